namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a FREE_SPACE_INFO (8 bytes), keyed (block group start, FREE_SPACE_INFO, length).</summary>
public readonly ref struct FreeSpaceInfo
{
    public const int Size = FlagsAt + 4; // 8
    private const int ExtentCountAt = 0;
    private const int FlagsAt = ExtentCountAt + 4;

    public const uint FlagUsingBitmaps = 1u << 0;

    private static readonly (ulong, string)[] FlagTable = [(FlagUsingBitmaps, "USING_BITMAPS")];

    private readonly ReadOnlySpan<byte> _d;

    public FreeSpaceInfo(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("free space info", Size, d.Length);
        _d = d;
    }

    public uint ExtentCount => Le.U32(_d, ExtentCountAt);
    public uint Flags => Le.U32(_d, FlagsAt);
    public bool UsingBitmaps => (Flags & FlagUsingBitmaps) != 0;

    public static string FlagNames(uint flags) => ItemText.FlagNames(flags, FlagTable);
}
