using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>One place a logical address lives on a device: a copy's own stripe, or (RAID5/6) a parity stripe of its row.</summary>
/// <param name="Role">"copy" (a mirror or the data stripe itself), "P" or "Q" (the row's parity; Q only for RAID6).</param>
/// <param name="StripeIndex">The chunk stripe this lies in (index into the chunk item's stripes).</param>
/// <param name="Contiguous">Bytes from <paramref name="Physical"/> that stay in the same stripe unit.</param>
public sealed record PhysicalPlace(string Role, int Copy, int StripeIndex, ulong DevId, ulong Physical, ulong Contiguous, string? DevicePath);

/// <summary>A tree block read from one copy, verified on its own: what its header says and whether it holds up.</summary>
public sealed record CopyHeader(ulong Bytenr, string Fsid, string ChunkTreeUuid, ulong Generation, ulong Owner, byte Level, uint NrItems,
    ulong Flags, int BackrefRev, string StoredCsum, string ComputedCsum, bool CsumOk, bool BytenrOk, bool FsidOk);

/// <summary>One copy of a logical range: where it lies and, when it could be read, its bytes' verdict.</summary>
/// <param name="Rebuilt">RAID5/6 copy 1: the data rebuilt from P and the row's other data stripes (not a place of its own).</param>
/// <param name="ReadProblem">Why the copy could not be read (missing device, short read); null when it was.</param>
public sealed record CopyView(int Copy, PhysicalPlace? Place, bool Rebuilt, string? ReadProblem, byte[]? Bytes);

/// <summary>Where one logical address lives: its chunk, profile, every copy's device and physical offset (RAID5/6: the
/// data stripe and the row's parity stripes), and each copy's bytes for a caller to verify. Read-only; never throws
/// for bad data.</summary>
public sealed class LogicalMapping
{
    public required ulong Logical { get; init; }
    public required Chunk Chunk { get; init; }
    /// <summary>The data stripe number within the chunk and the row (RAID0/10/5/6), with the offset inside the stripe unit.</summary>
    public required ulong StripeNr { get; init; }
    public required ulong Row { get; init; }
    public required ulong OffsetInStripe { get; init; }
    public required IReadOnlyList<PhysicalPlace> Places { get; init; }
    public required IReadOnlyList<CopyView> Copies { get; init; }

    /// <summary>Maps <paramref name="logical"/>; reads <paramref name="length"/> bytes of every copy (0: none). Null when
    /// no chunk holds the address. A range that would cross the chunk's end is cut there.</summary>
    public static LogicalMapping? Map(BtrfsVolume volume, ulong logical, int length)
    {
        var chunk = volume.Chunks.Find(logical);
        if (chunk == null) return null;
        ulong offset = logical - chunk.Logical;
        ulong stripeLen = chunk.StripeLen == 0 ? chunk.Length : chunk.StripeLen;
        int n = chunk.Stripes.Length;
        int dataStripes = chunk.Profile switch
        {
            RaidProfile.Raid0 => n,
            RaidProfile.Raid10 => Math.Max(1, n / Math.Max(1, (int)chunk.SubStripes)),
            RaidProfile.Raid5 or RaidProfile.Raid6 => Math.Max(1, n - chunk.ParityStripes),
            _ => 1,
        };
        bool striped = chunk.Profile is RaidProfile.Raid0 or RaidProfile.Raid10 or RaidProfile.Raid5 or RaidProfile.Raid6;
        ulong stripeNr = striped ? offset / stripeLen : 0, stripeOff = striped ? offset % stripeLen : offset;
        ulong row = striped ? stripeNr / (ulong)dataStripes : 0;

        var places = new List<PhysicalPlace>();
        bool parity = chunk.Profile is RaidProfile.Raid5 or RaidProfile.Raid6;
        int mirrors = parity ? 1 : chunk.Copies;
        for (int c = 0; c < mirrors; c++)
        {
            var loc = chunk.Map(logical, c, out ulong contiguous);
            places.Add(new PhysicalPlace("copy", c, IndexOf(chunk, loc), loc.DevId, loc.Offset, contiguous, volume.DeviceById(loc.DevId)?.Path));
        }
        if (parity)
        {
            // The row's stripes rotate: data stripe d of row r is stripe (r + d) mod n, then P, then Q.
            for (int p = 0; p < chunk.ParityStripes; p++)
            {
                int index = (int)((row + (ulong)dataStripes + (ulong)p) % (ulong)n);
                var s = chunk.Stripes[index];
                places.Add(new PhysicalPlace(p == 0 ? "P" : "Q", -1, index, s.DevId, s.Offset + row * stripeLen + stripeOff,
                    Math.Min(stripeLen - stripeOff, chunk.Length - offset), volume.DeviceById(s.DevId)?.Path));
            }
        }

        var copies = new List<CopyView>();
        int len = (int)Math.Min((ulong)Math.Max(0, length), chunk.End - logical);
        for (int c = 0; c < chunk.Copies; c++)
        {
            var place = parity && c == 1 ? null : places.First(p => p.Role == "copy" && p.Copy == c);
            bool rebuilt = parity && c == 1;
            if (len == 0) { copies.Add(new CopyView(c, place, rebuilt, null, null)); continue; }
            var buf = new byte[len];
            bool ok = volume.TryReadLogical(logical, buf, c, out string? problem);
            copies.Add(new CopyView(c, place, rebuilt, ok ? null : problem, ok ? buf : null));
        }
        return new LogicalMapping
        {
            Logical = logical, Chunk = chunk, StripeNr = stripeNr, Row = row, OffsetInStripe = stripeOff,
            Places = places, Copies = copies,
        };
    }

    /// <summary>Which chunk stripe a mapped location lies in: the stripe with that device whose range holds it.</summary>
    private static int IndexOf(Chunk chunk, StripeLocation loc)
    {
        for (int i = 0; i < chunk.Stripes.Length; i++)
        {
            var s = chunk.Stripes[i];
            if (s.DevId == loc.DevId && loc.Offset >= s.Offset && loc.Offset - s.Offset < chunk.StripeSize) return i;
        }
        return -1;
    }

    /// <summary>A copy's bytes read as a tree block: its header and whether checksum, bytenr and fsid hold.</summary>
    public static CopyHeader? ReadHeader(BtrfsVolume volume, ulong logical, byte[] bytes)
    {
        if (bytes.Length < Header.Size) return null;
        var h = new Header(bytes);
        var type = volume.CsumType;
        Span<byte> computed = stackalloc byte[Checksum.FieldSize];
        bool csumOk = Checksum.Verify(type, bytes, computed);
        var fail = volume.VerifyTreeBlock(logical, bytes, 0);
        return new CopyHeader(h.Bytenr, Uuids.Format(h.Fsid), Uuids.Format(h.ChunkTreeUuid), h.Generation, h.Owner, h.Level, h.NrItems,
            h.Flags, h.BackrefRev, Checksum.ToHex(type, h.Csum), Checksum.ToHex(type, computed), csumOk || fail == null,
            h.Bytenr == logical, fail == null || h.Fsid.SequenceEqual(volume.Super.MetadataFsidBytes)); // verified: its own fsid or a seed's
    }
}
