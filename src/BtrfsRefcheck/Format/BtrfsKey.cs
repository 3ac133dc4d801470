using System.Buffers.Binary;

namespace BtrfsRefcheck.Format;

/// <summary>A btrfs disk key: (objectid, type, offset), 17 bytes on disk, ordered by all three fields.</summary>
public readonly record struct BtrfsKey(ulong ObjectId, byte Type, ulong Offset) : IComparable<BtrfsKey>
{
    public const int Size = 17;
    private const int ObjectIdAt = 0;
    private const int TypeAt = ObjectIdAt + 8;
    private const int OffsetAt = TypeAt + 1;

    public static readonly BtrfsKey Min = new(0, 0, 0);
    public static readonly BtrfsKey Max = new(ulong.MaxValue, byte.MaxValue, ulong.MaxValue);

    public ItemType ItemType => (ItemType)Type;

    /// <summary>Reads a key from the first 17 bytes of <paramref name="data"/>.</summary>
    public static BtrfsKey Read(ReadOnlySpan<byte> data)
    {
        if (data.Length < Size) Throw.Truncated("key", Size, data.Length);
        return new BtrfsKey(
            BinaryPrimitives.ReadUInt64LittleEndian(data[ObjectIdAt..]),
            data[TypeAt],
            BinaryPrimitives.ReadUInt64LittleEndian(data[OffsetAt..]));
    }

    public void Write(Span<byte> dest)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dest[ObjectIdAt..], ObjectId);
        dest[TypeAt] = Type;
        BinaryPrimitives.WriteUInt64LittleEndian(dest[OffsetAt..], Offset);
    }

    public int CompareTo(BtrfsKey other)
    {
        int c = ObjectId.CompareTo(other.ObjectId);
        if (c != 0) return c;
        c = Type.CompareTo(other.Type);
        return c != 0 ? c : Offset.CompareTo(other.Offset);
    }

    public static bool operator <(BtrfsKey a, BtrfsKey b) => a.CompareTo(b) < 0;
    public static bool operator >(BtrfsKey a, BtrfsKey b) => a.CompareTo(b) > 0;
    public static bool operator <=(BtrfsKey a, BtrfsKey b) => a.CompareTo(b) <= 0;
    public static bool operator >=(BtrfsKey a, BtrfsKey b) => a.CompareTo(b) >= 0;

    /// <summary>Numeric form, as in <c>(256 1 0)</c>.</summary>
    public override string ToString() => $"({ObjectId} {Type} {Offset})";

    /// <summary>Symbolic form close to btrfs-progs: <c>(256 INODE_ITEM 0)</c>.</summary>
    public string ToDisplayString() => $"({ObjectIds.Name(ObjectId, Type)} {ItemTypes.Name(Type)} {ObjectIds.OffsetName(Type, Offset)})";
}
