namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a DEV_EXTENT (48 bytes), keyed (devid, DEV_EXTENT, physical offset): which chunk owns
/// [offset, offset + length) on the device.</summary>
public readonly ref struct DevExtent
{
    public const int Size = ChunkTreeUuidAt + 16; // 48
    private const int ChunkTreeAt = 0;
    private const int ChunkObjectIdAt = ChunkTreeAt + 8;
    private const int ChunkOffsetAt = ChunkObjectIdAt + 8;
    private const int LengthAt = ChunkOffsetAt + 8;
    private const int ChunkTreeUuidAt = LengthAt + 8;

    private readonly ReadOnlySpan<byte> _d;

    public DevExtent(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("dev extent", Size, d.Length);
        _d = d;
    }

    public ulong ChunkTree => Le.U64(_d, ChunkTreeAt);
    public ulong ChunkObjectId => Le.U64(_d, ChunkObjectIdAt);
    public ulong ChunkOffset => Le.U64(_d, ChunkOffsetAt);
    public ulong Length => Le.U64(_d, LengthAt);
    public Guid ChunkTreeUuid => Uuids.Read(_d.Slice(ChunkTreeUuidAt, 16));
}
