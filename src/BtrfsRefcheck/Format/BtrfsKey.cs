using System.Buffers.Binary;
using System.Runtime.CompilerServices;

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
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static BtrfsKey Read(ReadOnlySpan<byte> data)
    {
        if (data.Length < Size) Throw.Truncated("key", Size, data.Length);
        var d = data[..Size]; // one check above; the reads below are within a span of known length
        return new BtrfsKey(
            BinaryPrimitives.ReadUInt64LittleEndian(d),
            d[TypeAt],
            BinaryPrimitives.ReadUInt64LittleEndian(d[OffsetAt..]));
    }

    public void Write(Span<byte> dest)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dest[ObjectIdAt..], ObjectId);
        dest[TypeAt] = Type;
        BinaryPrimitives.WriteUInt64LittleEndian(dest[OffsetAt..], Offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int CompareTo(BtrfsKey other) =>
        ObjectId != other.ObjectId ? (ObjectId < other.ObjectId ? -1 : 1)
        : Type != other.Type ? (Type < other.Type ? -1 : 1)
        : Offset != other.Offset ? (Offset < other.Offset ? -1 : 1)
        : 0;

    /// <summary>True when this key sorts strictly before <paramref name="other"/> (objectid, then type, then offset).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsBefore(BtrfsKey other) =>
        ObjectId != other.ObjectId ? ObjectId < other.ObjectId
        : Type != other.Type ? Type < other.Type
        : Offset < other.Offset;

    public static bool operator <(BtrfsKey a, BtrfsKey b) => a.IsBefore(b);
    public static bool operator >(BtrfsKey a, BtrfsKey b) => b.IsBefore(a);
    public static bool operator <=(BtrfsKey a, BtrfsKey b) => !b.IsBefore(a);
    public static bool operator >=(BtrfsKey a, BtrfsKey b) => !a.IsBefore(b);

    /// <summary>Numeric form, as in <c>(256 1 0)</c>.</summary>
    public override string ToString() => $"({ObjectId} {Type} {Offset})";

    /// <summary>Symbolic form close to btrfs-progs: <c>(256 INODE_ITEM 0)</c>.</summary>
    public string ToDisplayString() => $"({ObjectIds.Name(ObjectId, Type)} {ItemTypes.Name(Type)} {ObjectIds.OffsetName(Type, Offset)})";
}
