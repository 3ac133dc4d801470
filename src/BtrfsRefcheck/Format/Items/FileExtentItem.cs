using System.Runtime.CompilerServices;

namespace BtrfsRefcheck.Format.Items;

public enum FileExtentType : byte { Inline = 0, Regular = 1, Prealloc = 2 }

/// <summary>View of an EXTENT_DATA item: 21 fixed bytes, then inline data (type 0) or the on-disk extent
/// reference (types 1 and 2, 53 bytes in all).</summary>
public readonly ref struct FileExtentItem
{
    public const int InlineHeaderSize = TypeAt + 1; // 21
    public const int RegularSize = NumBytesAt + 8;   // 53
    private const int GenerationAt = 0;
    private const int RamBytesAt = GenerationAt + 8;
    private const int CompressionAt = RamBytesAt + 8;
    private const int EncryptionAt = CompressionAt + 1;
    private const int OtherEncodingAt = EncryptionAt + 1;
    private const int TypeAt = OtherEncodingAt + 2;
    private const int DiskBytenrAt = TypeAt + 1;
    private const int DiskNumBytesAt = DiskBytenrAt + 8;
    private const int OffsetAt = DiskNumBytesAt + 8;
    private const int NumBytesAt = OffsetAt + 8;

    private readonly ReadOnlySpan<byte> _d;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FileExtentItem(ReadOnlySpan<byte> d)
    {
        if (d.Length < InlineHeaderSize) Throw.Truncated("file extent item", InlineHeaderSize, d.Length);
        _d = d;
        if (Type != FileExtentType.Inline && d.Length < RegularSize) Throw.Truncated("file extent item", RegularSize, d.Length);
    }

    public ulong Generation => Le.U64(_d, GenerationAt);
    public ulong RamBytes => Le.U64(_d, RamBytesAt);
    public byte Compression => _d[CompressionAt];
    public byte Encryption => _d[EncryptionAt];
    public ushort OtherEncoding => Le.U16(_d, OtherEncodingAt);
    public FileExtentType Type => (FileExtentType)_d[TypeAt];
    public bool IsInline => Type == FileExtentType.Inline;
    public ReadOnlySpan<byte> InlineData => _d[InlineHeaderSize..];
    public ulong DiskBytenr => IsInline ? 0 : Le.U64(_d, DiskBytenrAt);
    public ulong DiskNumBytes => IsInline ? 0 : Le.U64(_d, DiskNumBytesAt);
    public ulong Offset => IsInline ? 0 : Le.U64(_d, OffsetAt);
    public ulong NumBytes => IsInline ? 0 : Le.U64(_d, NumBytesAt);

    /// <summary>The 21-byte header every EXTENT_DATA item starts with, readable on an item too short for its type
    /// (which the constructor refuses): what a validator needs to say what is wrong with it.</summary>
    public readonly ref struct Head
    {
        private readonly ReadOnlySpan<byte> _d;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Head(ReadOnlySpan<byte> d)
        {
            if (d.Length < InlineHeaderSize) Throw.Truncated("file extent header", InlineHeaderSize, d.Length);
            _d = d;
        }

        public ulong Generation => Le.U64(_d, GenerationAt);
        public ulong RamBytes => Le.U64(_d, RamBytesAt);
        public byte Compression => _d[CompressionAt];
        public byte Encryption => _d[EncryptionAt];
        public byte TypeByte => _d[TypeAt];
        public FileExtentType Type => (FileExtentType)_d[TypeAt];
    }

    public static string CompressionName(byte c) => c switch
    {
        0 => "none",
        1 => "zlib",
        2 => "lzo",
        3 => "zstd",
        _ => $"unknown({c})",
    };
}
