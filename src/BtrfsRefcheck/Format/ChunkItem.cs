namespace BtrfsRefcheck.Format;

/// <summary>View of a chunk item: 48 bytes followed by num_stripes stripes of 32 bytes.</summary>
public readonly ref struct ChunkItem
{
    public const int HeaderSize = SubStripesAt + 2; // 48
    public const int StripeSize = 32;
    public const int LengthAt = 0;
    public const int OwnerAt = LengthAt + 8;
    public const int StripeLenAt = OwnerAt + 8;
    public const int TypeAt = StripeLenAt + 8;
    public const int IoAlignAt = TypeAt + 8;
    public const int IoWidthAt = IoAlignAt + 4;
    public const int SectorSizeAt = IoWidthAt + 4;
    public const int NumStripesAt = SectorSizeAt + 4;
    public const int SubStripesAt = NumStripesAt + 2;

    private readonly ReadOnlySpan<byte> _d;

    public ChunkItem(ReadOnlySpan<byte> d)
    {
        if (d.Length < HeaderSize) Throw.Truncated("chunk item", HeaderSize, d.Length);
        _d = d;
    }

    public ulong Length => Le.U64(_d, LengthAt);
    public ulong Owner => Le.U64(_d, OwnerAt);
    public ulong StripeLen => Le.U64(_d, StripeLenAt);
    public BlockGroupFlags Type => (BlockGroupFlags)Le.U64(_d, TypeAt);
    public uint IoAlign => Le.U32(_d, IoAlignAt);
    public uint IoWidth => Le.U32(_d, IoWidthAt);
    public uint SectorSize => Le.U32(_d, SectorSizeAt);
    public ushort NumStripes => Le.U16(_d, NumStripesAt);
    public ushort SubStripes => Le.U16(_d, SubStripesAt);

    /// <summary>Total size in bytes implied by num_stripes (may exceed the buffer on a corrupt item).</summary>
    public long ImpliedSize => HeaderSize + (long)NumStripes * StripeSize;

    /// <summary>True when every stripe the item claims is inside the buffer.</summary>
    public bool StripesFit => ImpliedSize <= _d.Length;

    public ChunkStripe Stripe(int i)
    {
        long at = HeaderSize + (long)i * StripeSize;
        if (i < 0 || i >= NumStripes || at + StripeSize > _d.Length)
            Throw.OutOfBounds("chunk stripe", at, StripeSize, _d.Length);
        return new ChunkStripe(_d.Slice((int)at, StripeSize));
    }
}

public readonly ref struct ChunkStripe
{
    private readonly ReadOnlySpan<byte> _d;
    public ChunkStripe(ReadOnlySpan<byte> d) => _d = d;
    public ulong DevId => Le.U64(_d, 0);
    public ulong Offset => Le.U64(_d, 8);
    public Guid DevUuid => Uuids.Read(_d.Slice(16, 16));
}
