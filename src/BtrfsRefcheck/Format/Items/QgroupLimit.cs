namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a QGROUP_LIMIT (40 bytes), keyed (0, QGROUP_LIMIT, qgroupid): which limits are set and their values.</summary>
public readonly ref struct QgroupLimit
{
    public const int Size = RsvExclAt + 8; // 40
    private const int FlagsAt = 0;
    private const int MaxRferAt = FlagsAt + 8;
    private const int MaxExclAt = MaxRferAt + 8;
    private const int RsvRferAt = MaxExclAt + 8;
    private const int RsvExclAt = RsvRferAt + 8;

    public const ulong FlagMaxRfer = 1UL << 0;
    public const ulong FlagMaxExcl = 1UL << 1;
    public const ulong FlagRsvRfer = 1UL << 2;
    public const ulong FlagRsvExcl = 1UL << 3;
    public const ulong FlagRferCmpr = 1UL << 4;
    public const ulong FlagExclCmpr = 1UL << 5;

    private static readonly (ulong, string)[] FlagTable =
    [
        (FlagMaxRfer, "MAX_RFER"), (FlagMaxExcl, "MAX_EXCL"), (FlagRsvRfer, "RSV_RFER"),
        (FlagRsvExcl, "RSV_EXCL"), (FlagRferCmpr, "RFER_CMPR"), (FlagExclCmpr, "EXCL_CMPR"),
    ];

    private readonly ReadOnlySpan<byte> _d;

    public QgroupLimit(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("qgroup limit", Size, d.Length);
        _d = d;
    }

    public ulong Flags => Le.U64(_d, FlagsAt);
    public ulong MaxRfer => Le.U64(_d, MaxRferAt);
    public ulong MaxExcl => Le.U64(_d, MaxExclAt);
    public ulong RsvRfer => Le.U64(_d, RsvRferAt);
    public ulong RsvExcl => Le.U64(_d, RsvExclAt);

    public static string FlagNames(ulong flags) => ItemText.FlagNames(flags, FlagTable);
}
