namespace BtrfsRefcheck.Format.Items;

/// <summary>View of the balance status item, (BALANCE, TEMPORARY_ITEM, 0) in the root tree: flags, then the
/// data, metadata and system balance args (136 bytes each), then 32 unused bytes (448 in all).</summary>
public readonly ref struct BalanceItem
{
    public const int Size = UnusedAt + 4 * 8; // 448
    private const int FlagsAt = 0;
    private const int DataAt = FlagsAt + 8;
    private const int MetaAt = DataAt + DiskBalanceArgs.Size;
    private const int SysAt = MetaAt + DiskBalanceArgs.Size;
    private const int UnusedAt = SysAt + DiskBalanceArgs.Size;

    public const ulong FlagData = 1UL << 0;
    public const ulong FlagSystem = 1UL << 1;
    public const ulong FlagMetadata = 1UL << 2;
    public const ulong FlagForce = 1UL << 3;
    public const ulong FlagResume = 1UL << 4;

    private static readonly (ulong, string)[] FlagTable =
        [(FlagData, "DATA"), (FlagSystem, "SYSTEM"), (FlagMetadata, "METADATA"), (FlagForce, "FORCE"), (FlagResume, "RESUME")];

    private readonly ReadOnlySpan<byte> _d;

    public BalanceItem(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("balance item", Size, d.Length);
        _d = d;
    }

    public ulong Flags => Le.U64(_d, FlagsAt);
    public DiskBalanceArgs Data => new(_d.Slice(DataAt, DiskBalanceArgs.Size));
    public DiskBalanceArgs Meta => new(_d.Slice(MetaAt, DiskBalanceArgs.Size));
    public DiskBalanceArgs Sys => new(_d.Slice(SysAt, DiskBalanceArgs.Size));

    public static string FlagNames(ulong flags) => ItemText.FlagNames(flags, FlagTable);
}

/// <summary>View of btrfs_disk_balance_args (136 bytes). usage and limit are unions of one u64 or two u32 (min, max).</summary>
public readonly ref struct DiskBalanceArgs
{
    public const int Size = UnusedAt + 6 * 8; // 136
    private const int ProfilesAt = 0;
    private const int UsageAt = ProfilesAt + 8;
    private const int DevIdAt = UsageAt + 8;
    private const int PstartAt = DevIdAt + 8;
    private const int PendAt = PstartAt + 8;
    private const int VstartAt = PendAt + 8;
    private const int VendAt = VstartAt + 8;
    private const int TargetAt = VendAt + 8;
    private const int FlagsAt = TargetAt + 8;
    private const int LimitAt = FlagsAt + 8;
    private const int StripesMinAt = LimitAt + 8;
    private const int StripesMaxAt = StripesMinAt + 4;
    private const int UnusedAt = StripesMaxAt + 4;

    public const ulong FlagProfiles = 1UL << 0;
    public const ulong FlagUsage = 1UL << 1;
    public const ulong FlagDevId = 1UL << 2;
    public const ulong FlagDrange = 1UL << 3;
    public const ulong FlagVrange = 1UL << 4;
    public const ulong FlagLimit = 1UL << 5;
    public const ulong FlagLimitRange = 1UL << 6;
    public const ulong FlagStripesRange = 1UL << 7;
    public const ulong FlagConvert = 1UL << 8;
    public const ulong FlagSoft = 1UL << 9;
    public const ulong FlagUsageRange = 1UL << 10;

    private static readonly (ulong, string)[] FlagTable =
    [
        (FlagProfiles, "PROFILES"), (FlagUsage, "USAGE"), (FlagDevId, "DEVID"), (FlagDrange, "DRANGE"),
        (FlagVrange, "VRANGE"), (FlagLimit, "LIMIT"), (FlagLimitRange, "LIMIT_RANGE"),
        (FlagStripesRange, "STRIPES_RANGE"), (FlagConvert, "CONVERT"), (FlagSoft, "SOFT"), (FlagUsageRange, "USAGE_RANGE"),
    ];

    private readonly ReadOnlySpan<byte> _d;

    public DiskBalanceArgs(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("balance args", Size, d.Length);
        _d = d;
    }

    public ulong Profiles => Le.U64(_d, ProfilesAt);
    public ulong Usage => Le.U64(_d, UsageAt);
    public uint UsageMin => Le.U32(_d, UsageAt);
    public uint UsageMax => Le.U32(_d, UsageAt + 4);
    public ulong DevId => Le.U64(_d, DevIdAt);
    public ulong Pstart => Le.U64(_d, PstartAt);
    public ulong Pend => Le.U64(_d, PendAt);
    public ulong Vstart => Le.U64(_d, VstartAt);
    public ulong Vend => Le.U64(_d, VendAt);
    public ulong Target => Le.U64(_d, TargetAt);
    public ulong Flags => Le.U64(_d, FlagsAt);
    public ulong Limit => Le.U64(_d, LimitAt);
    public uint LimitMin => Le.U32(_d, LimitAt);
    public uint LimitMax => Le.U32(_d, LimitAt + 4);
    public uint StripesMin => Le.U32(_d, StripesMinAt);
    public uint StripesMax => Le.U32(_d, StripesMaxAt);

    public static string FlagNames(ulong flags) => ItemText.FlagNames(flags, FlagTable);
}
