namespace BtrfsRefcheck.Format.Items;

/// <summary>View of the QGROUP_STATUS item, (0, QGROUP_STATUS, 0): version, generation, flags, rescan (32 bytes),
/// plus enable_gen (40 bytes) when simple quotas are enabled.</summary>
public readonly ref struct QgroupStatus
{
    public const int Size = RescanAt + 8;            // 32
    public const int SizeWithEnableGen = EnableGenAt + 8; // 40
    private const int VersionAt = 0;
    private const int GenerationAt = VersionAt + 8;
    private const int FlagsAt = GenerationAt + 8;
    private const int RescanAt = FlagsAt + 8;
    private const int EnableGenAt = RescanAt + 8;

    public const ulong FlagOn = 1UL << 0;
    public const ulong FlagRescan = 1UL << 1;
    public const ulong FlagInconsistent = 1UL << 2;
    public const ulong FlagSimpleMode = 1UL << 3;

    private static readonly (ulong, string)[] FlagTable =
        [(FlagOn, "ON"), (FlagRescan, "RESCAN"), (FlagInconsistent, "INCONSISTENT"), (FlagSimpleMode, "SIMPLE_MODE")];

    private readonly ReadOnlySpan<byte> _d;

    public QgroupStatus(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("qgroup status", Size, d.Length);
        _d = d;
    }

    public ulong Version => Le.U64(_d, VersionAt);
    public ulong Generation => Le.U64(_d, GenerationAt);
    public ulong Flags => Le.U64(_d, FlagsAt);
    public ulong Rescan => Le.U64(_d, RescanAt);
    public bool HasEnableGen => _d.Length >= SizeWithEnableGen;
    public ulong EnableGen => HasEnableGen ? Le.U64(_d, EnableGenAt) : 0;

    public static string FlagNames(ulong flags) => ItemText.FlagNames(flags, FlagTable);
}
