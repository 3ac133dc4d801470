using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>The logical ranges of a block group the kernel never allocates because a superblock copy lives there
/// (exclude_super_stripes, block-group.c, through btrfs_rmap_block): for each copy's device offset that falls in one of
/// the chunk's stripes, the 64 KiB stripe unit (RAID5/6: the full data row) holding it; and [start, 64 KiB) of a
/// block group that starts below the primary copy. Free-space records may or may not call these ranges free (mkfs and
/// the kernel differ): the comparison leaves them out on both sides, as btrfs check's check_cache_range does.</summary>
internal static class SuperStripes
{
    private const ulong StripeLen = 64 * 1024;

    public static List<(ulong Start, ulong End)> In(Chunk? chunk, ulong bgStart, ulong bgEnd)
    {
        var r = new List<(ulong, ulong)>();
        if (bgStart < (ulong)Superblock.MirrorOffsets[0])
            r.Add((bgStart, Math.Min(bgEnd, (ulong)Superblock.MirrorOffsets[0])));
        if (chunk == null || chunk.Stripes.Length == 0) return r;
        int n = chunk.Stripes.Length;
        ulong dataStripes = chunk.Profile switch
        {
            RaidProfile.Raid5 or RaidProfile.Raid6 => (ulong)Math.Max(1, n - chunk.ParityStripes),
            _ => 1,
        };
        ulong ioStripe = StripeLen * dataStripes;
        ulong perDevice = chunk.StripeSize;
        foreach (long sb in Superblock.MirrorOffsets)
        {
            ulong physical = (ulong)sb;
            for (int i = 0; i < n; i++)
            {
                ulong so = chunk.Stripes[i].Offset;
                if (physical < so || physical - so >= perDevice) continue;
                ulong stripeNr = (physical - so) / StripeLen;
                ulong offset = (physical - so) % StripeLen;
                if (chunk.Profile is RaidProfile.Raid0 or RaidProfile.Raid10)
                    stripeNr = (stripeNr * (ulong)n + (ulong)i) / Math.Max(1UL, chunk.Profile == RaidProfile.Raid10 ? chunk.SubStripes : 1UL);
                else if (chunk.Profile is RaidProfile.Raid5 or RaidProfile.Raid6)
                    offset = 0; // the whole data row of that stripe number
                ulong lo = chunk.Logical + stripeNr * ioStripe;
                ulong hi = lo + offset + ioStripe;
                if (lo >= bgEnd || hi <= bgStart) continue;
                r.Add((Math.Max(lo, bgStart), Math.Min(hi, bgEnd)));
            }
        }
        r.Sort();
        return r;
    }
}
