using System.Runtime.CompilerServices;

namespace BtrfsRefcheck.Format;

/// <summary>View of the 101-byte header at the start of every tree block.</summary>
public readonly ref struct Header
{
    public const int Size = LevelAt + 1; // 0x65
    public const int CsumAt = 0x00;
    public const int CsumSize = 32;
    public const int FsidAt = CsumAt + CsumSize;       // 0x20
    public const int BytenrAt = FsidAt + 16;            // 0x30
    public const int FlagsAt = BytenrAt + 8;            // 0x38
    public const int ChunkTreeUuidAt = FlagsAt + 8;     // 0x40
    public const int GenerationAt = ChunkTreeUuidAt + 16; // 0x50
    public const int OwnerAt = GenerationAt + 8;        // 0x58
    public const int NrItemsAt = OwnerAt + 8;           // 0x60
    public const int LevelAt = NrItemsAt + 4;           // 0x64

    public const ulong FlagWritten = 1UL << 0;
    public const ulong FlagReloc = 1UL << 1;
    public const int BackrefRevShift = 56;
    public const int MaxLevel = 8;

    private readonly ReadOnlySpan<byte> _d;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Header(ReadOnlySpan<byte> block)
    {
        if (block.Length < Size) Throw.Truncated("tree block header", Size, block.Length);
        _d = block;
    }

    public ReadOnlySpan<byte> Csum => _d.Slice(CsumAt, CsumSize);
    public ReadOnlySpan<byte> Fsid => _d.Slice(FsidAt, 16);
    public ulong Bytenr => Le.U64(_d, BytenrAt);
    public ulong RawFlags => Le.U64(_d, FlagsAt);
    public ulong Flags => RawFlags & ((1UL << BackrefRevShift) - 1);
    public int BackrefRev => (int)(RawFlags >> BackrefRevShift);
    public ReadOnlySpan<byte> ChunkTreeUuid => _d.Slice(ChunkTreeUuidAt, 16);
    public ulong Generation => Le.U64(_d, GenerationAt);
    public ulong Owner => Le.U64(_d, OwnerAt);
    public uint NrItems => Le.U32(_d, NrItemsAt);
    public byte Level => _d[LevelAt];

    public static string FlagNames(ulong flags)
    {
        var names = new List<string>();
        if ((flags & FlagWritten) != 0) names.Add("WRITTEN");
        if ((flags & FlagReloc) != 0) names.Add("RELOC");
        ulong rest = flags & ~(FlagWritten | FlagReloc);
        if (rest != 0) names.Add($"0x{rest:x}");
        return string.Join('|', names);
    }
}

/// <summary>View of a leaf item header (25 bytes): key, data offset (relative to the end of the header), data size.</summary>
public readonly ref struct ItemHeader
{
    public const int Size = DataSizeAt + 4; // 25
    public const int KeyAt = 0;
    public const int DataOffsetAt = KeyAt + BtrfsKey.Size;
    public const int DataSizeAt = DataOffsetAt + 4;

    private readonly ReadOnlySpan<byte> _d;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ItemHeader(ReadOnlySpan<byte> d) { if (d.Length < Size) Throw.Truncated("item header", Size, d.Length); _d = d; }
    public BtrfsKey Key => BtrfsKey.Read(_d);
    public uint DataOffset => Le.U32(_d, DataOffsetAt);
    public uint DataSize => Le.U32(_d, DataSizeAt);
}

/// <summary>View of a node's key pointer (33 bytes): key, child block address, child generation.</summary>
public readonly ref struct KeyPtr
{
    public const int Size = GenerationAt + 8; // 33
    public const int KeyAt = 0;
    public const int BlockPtrAt = KeyAt + BtrfsKey.Size;
    public const int GenerationAt = BlockPtrAt + 8;

    private readonly ReadOnlySpan<byte> _d;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public KeyPtr(ReadOnlySpan<byte> d) { if (d.Length < Size) Throw.Truncated("key pointer", Size, d.Length); _d = d; }
    public BtrfsKey Key => BtrfsKey.Read(_d);
    public ulong BlockPtr => Le.U64(_d, BlockPtrAt);
    public ulong Generation => Le.U64(_d, GenerationAt);
}
