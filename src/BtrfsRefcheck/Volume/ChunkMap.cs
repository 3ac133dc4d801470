using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

public readonly record struct StripeLocation(ulong DevId, ulong Offset, Guid DevUuid);

/// <summary>A chunk: the logical range [Logical, Logical + Length) and where its stripes live.</summary>
public sealed class Chunk
{
    public required ulong Logical { get; init; }
    public required ulong Length { get; init; }
    public required ulong StripeLen { get; init; }
    public required BlockGroupFlags Type { get; init; }
    public required ushort SubStripes { get; init; }
    public required StripeLocation[] Stripes { get; init; }

    public ulong End => Logical + Length;
    public RaidProfile Profile => Type.Profile() ?? RaidProfile.Single;
    public bool Contains(ulong logical) => logical >= Logical && logical - Logical < Length;

    /// <summary>Bytes each stripe occupies on its device (what its DEV_EXTENT must cover).</summary>
    public ulong StripeSize => Profile switch
    {
        RaidProfile.Raid0 => Length / (ulong)Stripes.Length,
        RaidProfile.Raid10 => Length / (ulong)Math.Max(1, Stripes.Length / Math.Max(1, (int)SubStripes)),
        RaidProfile.Raid5 or RaidProfile.Raid6 => Length / (ulong)Math.Max(1, Stripes.Length - ParityStripes),
        _ => Length,
    };

    public int ParityStripes => Profile switch { RaidProfile.Raid5 => 1, RaidProfile.Raid6 => 2, _ => 0 };

    /// <summary>How many ways each byte can be read: the mirrors; for RAID5/6 two: the data stripe itself (copy 0)
    /// and its rebuild from P and the row's other data stripes (copy 1, see <see cref="ParityRow"/>).</summary>
    public int Copies => Profile switch
    {
        RaidProfile.Raid5 or RaidProfile.Raid6 => 2,
        RaidProfile.Dup or RaidProfile.Raid1 => Math.Min(2, Stripes.Length),
        RaidProfile.Raid1C3 => Math.Min(3, Stripes.Length),
        RaidProfile.Raid1C4 => Math.Min(4, Stripes.Length),
        RaidProfile.Raid10 => Math.Max(1, (int)SubStripes),
        _ => 1,
    };

    /// <summary>For RAID5/6: the locations that rebuild the data at <paramref name="logical"/> without its own stripe:
    /// the row's other data stripes and P (data = P xor the others), at the same offset within the stripe unit.</summary>
    public (StripeLocation Target, StripeLocation[] Others) ParityRow(ulong logical, out ulong contiguous)
    {
        if (Profile is not (RaidProfile.Raid5 or RaidProfile.Raid6)) throw new InvalidOperationException("not a parity profile");
        ulong offset = logical - Logical;
        int n = Stripes.Length;
        int dataStripes = Math.Max(1, n - ParityStripes);
        ulong stripeNr = offset / StripeLen, stripeOff = offset % StripeLen;
        int dataIndex = (int)(stripeNr % (ulong)dataStripes);
        ulong row = stripeNr / (ulong)dataStripes;
        contiguous = Math.Min(StripeLen - stripeOff, Length - offset);
        StripeLocation At(int d) { var s = Stripes[(int)((row + (ulong)d) % (ulong)n)]; return s with { Offset = s.Offset + row * StripeLen + stripeOff }; }
        var others = new List<StripeLocation>();
        for (int d = 0; d < dataStripes; d++) if (d != dataIndex) others.Add(At(d));
        others.Add(At(dataStripes)); // P follows the data stripes in the rotation
        return (At(dataIndex), others.ToArray());
    }

    /// <summary>Maps a logical address inside this chunk to the device location of copy <paramref name="copy"/>,
    /// and returns how many bytes from there stay in the same stripe unit (contiguous on that device).</summary>
    public StripeLocation Map(ulong logical, int copy, out ulong contiguous)
    {
        if (!Contains(logical)) throw new ArgumentOutOfRangeException(nameof(logical));
        if ((uint)copy >= (uint)Copies || (copy > 0 && Profile is RaidProfile.Raid5 or RaidProfile.Raid6))
            throw new ArgumentOutOfRangeException(nameof(copy), "RAID5/6 copy 1 is a parity rebuild: use ParityRow");
        ulong offset = logical - Logical;
        ulong stripeLen = StripeLen == 0 ? Length : StripeLen;
        int n = Stripes.Length;
        switch (Profile)
        {
            case RaidProfile.Single or RaidProfile.Dup or RaidProfile.Raid1 or RaidProfile.Raid1C3 or RaidProfile.Raid1C4:
            {
                contiguous = Length - offset;
                var s = Stripes[copy];
                return s with { Offset = s.Offset + offset };
            }
            case RaidProfile.Raid0:
            {
                ulong stripeNr = offset / stripeLen, stripeOff = offset % stripeLen;
                int index = (int)(stripeNr % (ulong)n);
                ulong row = stripeNr / (ulong)n;
                contiguous = Math.Min(stripeLen - stripeOff, Length - offset);
                var s = Stripes[index];
                return s with { Offset = s.Offset + row * stripeLen + stripeOff };
            }
            case RaidProfile.Raid10:
            {
                int sub = Math.Max(1, (int)SubStripes);
                int factor = Math.Max(1, n / sub);
                ulong stripeNr = offset / stripeLen, stripeOff = offset % stripeLen;
                int index = (int)(stripeNr % (ulong)factor) * sub + copy;
                ulong row = stripeNr / (ulong)factor;
                contiguous = Math.Min(stripeLen - stripeOff, Length - offset);
                var s = Stripes[index];
                return s with { Offset = s.Offset + row * stripeLen + stripeOff };
            }
            case RaidProfile.Raid5 or RaidProfile.Raid6:
            {
                int dataStripes = Math.Max(1, n - ParityStripes);
                ulong stripeNr = offset / stripeLen, stripeOff = offset % stripeLen;
                ulong dataIndex = stripeNr % (ulong)dataStripes;
                ulong row = stripeNr / (ulong)dataStripes;
                // Parity rotates: the data stripes of row r start at device (r mod n).
                int index = (int)((row + dataIndex) % (ulong)n);
                contiguous = Math.Min(stripeLen - stripeOff, Length - offset);
                var s = Stripes[index];
                return s with { Offset = s.Offset + row * stripeLen + stripeOff };
            }
            default:
                throw new InvalidOperationException();
        }
    }
}

/// <summary>Logical-to-physical map: chunks sorted by logical start, half-open, non-overlapping.</summary>
public sealed class ChunkMap
{
    private readonly List<Chunk> _chunks = [];

    public IReadOnlyList<Chunk> Chunks => _chunks;

    /// <summary>Adds a chunk; returns the existing chunk it overlaps instead (and adds nothing) if any.</summary>
    public Chunk? TryAdd(Chunk c)
    {
        int i = LowerBound(c.Logical);
        if (i < _chunks.Count && _chunks[i].Logical < c.End) return _chunks[i];
        if (i > 0 && _chunks[i - 1].End > c.Logical) return _chunks[i - 1];
        _chunks.Insert(i, c);
        return null;
    }

    /// <summary>The chunk that holds <paramref name="logical"/>, or null.</summary>
    public Chunk? Find(ulong logical)
    {
        int lo = 0, hi = _chunks.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var c = _chunks[mid];
            if (logical < c.Logical) hi = mid - 1;
            else if (logical - c.Logical >= c.Length) lo = mid + 1;
            else return c;
        }
        return null;
    }

    private int LowerBound(ulong logical)
    {
        int lo = 0, hi = _chunks.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_chunks[mid].Logical < logical) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>Decodes a chunk item; null with a reason when it is unusable, null without one for a fully REMAPPED chunk
    /// (no stripes of its own: nothing to map).</summary>
    public static Chunk? Decode(BtrfsKey key, ReadOnlySpan<byte> data, out string? problem)
    {
        problem = null;
        if (data.Length < ChunkItem.HeaderSize) { problem = $"chunk item of {data.Length} bytes, need at least {ChunkItem.HeaderSize}"; return null; }
        var ci = new ChunkItem(data);
        // A fully REMAPPED chunk has no stripes (its addresses are the remap tree's): not in the map, and no problem.
        if (ci.NumStripes == 0) { problem = (ci.Type & BlockGroupFlags.Remapped) != 0 ? null : "chunk has num_stripes 0"; return null; }
        if (!ci.StripesFit) { problem = $"chunk claims {ci.NumStripes} stripes ({ci.ImpliedSize} bytes) but the item has {data.Length}"; return null; }
        if (ci.Length == 0) { problem = "chunk length 0"; return null; }
        if (key.Offset + ci.Length < key.Offset) { problem = "chunk end overflows 64 bits"; return null; }
        if (ci.Type.Profile() is null) { problem = $"chunk type {ci.Type.Describe()} has more than one profile"; return null; }
        if (ci.StripeLen == 0 && ci.Type.Profile() is RaidProfile.Raid0 or RaidProfile.Raid10 or RaidProfile.Raid5 or RaidProfile.Raid6)
        { problem = "striped chunk with stripe_len 0"; return null; }
        var profile = ci.Type.Profile()!.Value;
        int minStripes = profile switch
        {
            RaidProfile.Dup or RaidProfile.Raid1 => 2,
            RaidProfile.Raid1C3 => 3,
            RaidProfile.Raid1C4 => 4,
            RaidProfile.Raid10 => 2,
            RaidProfile.Raid5 => 2,
            RaidProfile.Raid6 => 3,
            _ => 1,
        };
        if (ci.NumStripes < minStripes) { problem = $"{profile} chunk with {ci.NumStripes} stripes, needs at least {minStripes}"; return null; }
        if (profile == RaidProfile.Raid10 && (ci.SubStripes < 2 || ci.NumStripes % ci.SubStripes != 0))
        { problem = $"RAID10 chunk with num_stripes {ci.NumStripes} and sub_stripes {ci.SubStripes}"; return null; }
        var stripes = new StripeLocation[ci.NumStripes];
        for (int i = 0; i < stripes.Length; i++)
        {
            var s = ci.Stripe(i);
            stripes[i] = new StripeLocation(s.DevId, s.Offset, s.DevUuid);
        }
        return new Chunk
        {
            Logical = key.Offset, Length = ci.Length, StripeLen = ci.StripeLen, Type = ci.Type,
            SubStripes = ci.SubStripes, Stripes = stripes,
        };
    }
}
