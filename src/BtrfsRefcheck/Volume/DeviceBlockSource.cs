using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>The devices of the volume: each copy of an address is read from its stripe (DUP, RAID1*, RAID10 mirrors;
/// RAID5/6 copy 1 rebuilt from P and the row's other data stripes).</summary>
internal sealed class DeviceBlockSource(IReadOnlyDictionary<ulong, BlockDevice> byDevId) : IBlockSource
{
    public int Copies(Chunk chunk) => chunk.Copies;

    public ChecksumType? ResealedWith => null;

    public ulong ReadOrder(Chunk chunk, ulong logical) => chunk.Map(logical, 0, out _).Offset;

    public void WillNeed(Chunk chunk, ulong logical, ulong length)
    {
        for (ulong done = 0; done < length;)
        {
            var loc = chunk.Map(logical + done, 0, out ulong contiguous);
            ulong n = Math.Min(length - done, contiguous);
            if (loc.Offset <= long.MaxValue && byDevId.TryGetValue(loc.DevId, out var dev)) dev.WillNeed((long)loc.Offset, (long)n);
            done += n;
        }
    }

    public CopyFailure? Read(Chunk chunk, ulong logical, int copy, Span<byte> dest)
    {
        if (copy == 1 && chunk.Profile is RaidProfile.Raid5 or RaidProfile.Raid6) return RebuildFromParity(chunk, logical, dest);
        int done = 0;
        while (done < dest.Length)
        {
            var loc = chunk.Map(logical + (ulong)done, copy, out ulong contiguous);
            int n = (int)Math.Min((ulong)(dest.Length - done), contiguous);
            if (!byDevId.TryGetValue(loc.DevId, out var dev))
                return new CopyFailure(copy, FindingCode.TreeBlockUnreadable, $"device devid {loc.DevId} is missing", loc.DevId, loc.Offset, DeviceMissing: true);
            if (loc.Offset > long.MaxValue)
                return new CopyFailure(copy, FindingCode.StripeBeyondDevice, $"physical offset {loc.Offset} is out of range", loc.DevId, loc.Offset);
            int got = dev.Read((long)loc.Offset, dest.Slice(done, n));
            if (got < n)
                return new CopyFailure(copy, FindingCode.StripeBeyondDevice,
                    $"short read at devid {loc.DevId} physical {loc.Offset}: {got} of {n} bytes (device is {dev.Length} bytes)", loc.DevId, loc.Offset);
            done += n;
        }
        return null;
    }

    private static void XorInto(Span<byte> acc, ReadOnlySpan<byte> src)
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
            for (int w = System.Numerics.Vector<byte>.Count; i + w <= acc.Length; i += w)
                (new System.Numerics.Vector<byte>(acc[i..]) ^ new System.Numerics.Vector<byte>(src[i..])).CopyTo(acc[i..]);
        for (; i < acc.Length; i++) acc[i] ^= src[i];
    }

    /// <summary>RAID5/6 with one data stripe lost: data = P xor the row's other data stripes, piece by piece.</summary>
    private CopyFailure? RebuildFromParity(Chunk chunk, ulong logical, Span<byte> dest)
    {
        int done = 0;
        byte[] tmp = new byte[Math.Min(dest.Length, 1 << 16)];
        while (done < dest.Length)
        {
            var (target, others) = chunk.ParityRow(logical + (ulong)done, out ulong contiguous);
            int n = (int)Math.Min((ulong)(dest.Length - done), contiguous);
            var piece = dest.Slice(done, n);
            piece.Clear();
            foreach (var loc in others)
            {
                if (!byDevId.TryGetValue(loc.DevId, out var dev))
                    return new CopyFailure(1, FindingCode.TreeBlockUnreadable,
                        $"parity rebuild impossible: device devid {loc.DevId} is missing too", loc.DevId, loc.Offset, DeviceMissing: true);
                if (tmp.Length < n) tmp = new byte[n];
                int got = loc.Offset > long.MaxValue ? 0 : dev.Read((long)loc.Offset, tmp.AsSpan(0, n));
                if (got < n)
                    return new CopyFailure(1, FindingCode.StripeBeyondDevice, $"parity rebuild: short read at devid {loc.DevId} physical {loc.Offset}", loc.DevId, loc.Offset);
                XorInto(piece, tmp.AsSpan(0, n));
            }
            done += n;
        }
        return null;
    }
}
