namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a QGROUP_INFO (40 bytes), keyed (0, QGROUP_INFO, qgroupid): usage counters.</summary>
public readonly ref struct QgroupInfo
{
    public const int Size = ExclCmprAt + 8; // 40
    private const int GenerationAt = 0;
    private const int RferAt = GenerationAt + 8;
    private const int RferCmprAt = RferAt + 8;
    private const int ExclAt = RferCmprAt + 8;
    private const int ExclCmprAt = ExclAt + 8;

    private readonly ReadOnlySpan<byte> _d;

    public QgroupInfo(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("qgroup info", Size, d.Length);
        _d = d;
    }

    public ulong Generation => Le.U64(_d, GenerationAt);
    public ulong Rfer => Le.U64(_d, RferAt);
    public ulong RferCmpr => Le.U64(_d, RferCmprAt);
    public ulong Excl => Le.U64(_d, ExclAt);
    public ulong ExclCmpr => Le.U64(_d, ExclCmprAt);
}
