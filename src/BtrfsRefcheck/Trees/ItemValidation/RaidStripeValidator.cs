using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>RAID_STRIPE: the kernel's check_raid_stripe_extent: the logical start (key objectid) is sector aligned, and
/// the filesystem has the RAID_STRIPE_TREE feature. Reported as <see cref="FindingCode.ItemUndecodable"/>: an item
/// of this type cannot be trusted where it breaks either.</summary>
internal static class RaidStripeValidator
{
    public static void Validate(in ItemCheckContext c, ItemReporter r)
    {
        const FindingCode Code = FindingCode.ItemUndecodable;
        r.Aligned(c, Code, "stripe extent logical start (key objectid)", c.Key.ObjectId);
        if (!c.Has(Features.IncompatRaidStripeTree)) NoFeature(c, r);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void NoFeature(in ItemCheckContext c, ItemReporter r) =>
        r.Add(c, FindingCode.ItemUndecodable, "RAID stripe extent on a filesystem without RAID_STRIPE_TREE", "RAID_STRIPE_TREE", "not set");
}
