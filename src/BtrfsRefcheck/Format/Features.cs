namespace BtrfsRefcheck.Format;

/// <summary>Feature flag bits of the superblock, with the names btrfs-progs prints.</summary>
public static class Features
{
    public const ulong CompatRoFreeSpaceTree = 1UL << 0;
    public const ulong CompatRoFreeSpaceTreeValid = 1UL << 1;
    public const ulong CompatRoVerity = 1UL << 2;
    public const ulong CompatRoBlockGroupTree = 1UL << 3;

    public const ulong IncompatMixedBackref = 1UL << 0;
    public const ulong IncompatDefaultSubvol = 1UL << 1;
    public const ulong IncompatMixedGroups = 1UL << 2;
    public const ulong IncompatCompressLzo = 1UL << 3;
    public const ulong IncompatCompressZstd = 1UL << 4;
    public const ulong IncompatBigMetadata = 1UL << 5;
    public const ulong IncompatExtendedIref = 1UL << 6;
    public const ulong IncompatRaid56 = 1UL << 7;
    public const ulong IncompatSkinnyMetadata = 1UL << 8;
    public const ulong IncompatNoHoles = 1UL << 9;
    public const ulong IncompatMetadataUuid = 1UL << 10;
    public const ulong IncompatRaid1C34 = 1UL << 11;
    public const ulong IncompatZoned = 1UL << 12;
    public const ulong IncompatExtentTreeV2 = 1UL << 13;
    public const ulong IncompatRaidStripeTree = 1UL << 14;
    public const ulong IncompatSimpleQuota = 1UL << 16;
    public const ulong IncompatRemapTree = 1UL << 17;

    private static readonly (ulong Bit, string Name)[] CompatRo =
    [
        (CompatRoFreeSpaceTree, "FREE_SPACE_TREE"), (CompatRoFreeSpaceTreeValid, "FREE_SPACE_TREE_VALID"),
        (CompatRoVerity, "VERITY"), (CompatRoBlockGroupTree, "BLOCK_GROUP_TREE"),
    ];

    private static readonly (ulong Bit, string Name)[] Incompat =
    [
        (IncompatMixedBackref, "MIXED_BACKREF"), (IncompatDefaultSubvol, "DEFAULT_SUBVOL"),
        (IncompatMixedGroups, "MIXED_GROUPS"), (IncompatCompressLzo, "COMPRESS_LZO"),
        (IncompatCompressZstd, "COMPRESS_ZSTD"), (IncompatBigMetadata, "BIG_METADATA"),
        (IncompatExtendedIref, "EXTENDED_IREF"), (IncompatRaid56, "RAID56"),
        (IncompatSkinnyMetadata, "SKINNY_METADATA"), (IncompatNoHoles, "NO_HOLES"),
        (IncompatMetadataUuid, "METADATA_UUID"), (IncompatRaid1C34, "RAID1C34"), (IncompatZoned, "ZONED"),
        (IncompatExtentTreeV2, "EXTENT_TREE_V2"), (IncompatRaidStripeTree, "RAID_STRIPE_TREE"),
        (IncompatSimpleQuota, "SIMPLE_QUOTA"), (IncompatRemapTree, "REMAP_TREE"),
    ];

    /// <summary>Every incompat bit btrfs-progs 6.19 defines; any other bit makes the filesystem unreadable to us.</summary>
    public static readonly ulong KnownIncompat = Incompat.Aggregate(0UL, (m, e) => m | e.Bit);

    /// <summary>Every compat_ro bit btrfs-progs 6.19 defines.</summary>
    public static readonly ulong KnownCompatRo = CompatRo.Aggregate(0UL, (m, e) => m | e.Bit);

    public static IReadOnlyList<string> CompatNames(ulong flags) => Names(flags, []);
    public static IReadOnlyList<string> CompatRoNames(ulong flags) => Names(flags, CompatRo);
    public static IReadOnlyList<string> IncompatNames(ulong flags) => Names(flags, Incompat);

    private static List<string> Names(ulong flags, (ulong Bit, string Name)[] table)
    {
        var list = new List<string>();
        ulong known = 0;
        foreach (var (bit, name) in table)
        {
            known |= bit;
            if ((flags & bit) != 0) list.Add(name);
        }
        ulong unknown = flags & ~known;
        for (int b = 0; b < 64; b++)
            if ((unknown & (1UL << b)) != 0) list.Add($"unknown flag: 0x{1UL << b:x}");
        return list;
    }
}
