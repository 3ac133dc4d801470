namespace BtrfsRefcheck.Format.Items;

/// <summary>View of the device statistics item, (DEV_STATS, PERSISTENT_ITEM, devid): an array of u64 counters.
/// Older kernels wrote fewer values (missing ones read as absent); newer ones may append more.</summary>
public readonly ref struct DevStatsItem
{
    public const int WriteErrs = 0;
    public const int ReadErrs = 1;
    public const int FlushErrs = 2;
    public const int CorruptionErrs = 3;
    public const int GenerationErrs = 4;
    public const int KnownValues = 5;
    public const int Size = KnownValues * 8; // 40

    /// <summary>Field names of the known counters, by index.</summary>
    public static readonly IReadOnlyList<string> ValueNames = ["write_errs", "read_errs", "flush_errs", "corruption_errs", "generation_errs"];

    private readonly ReadOnlySpan<byte> _d;

    public DevStatsItem(ReadOnlySpan<byte> d) => _d = d;

    /// <summary>Number of whole u64 values in the item.</summary>
    public int Count => _d.Length / 8;
    public int Leftover => _d.Length % 8;

    public ulong Value(int i)
    {
        if ((uint)i >= (uint)Count) Throw.OutOfBounds("dev stats item", (long)i * 8, 8, _d.Length);
        return Le.U64(_d, i * 8);
    }
}
