using BtrfsRefcheck.Cli.Rendering;
using System.Buffers.Binary;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Tests.Format;

/// <summary>Builds little-endian item buffers field by field.</summary>
internal sealed class Buf
{
    private readonly List<byte> _b = [];

    public Buf U8(byte v) { _b.Add(v); return this; }
    public Buf U16(ushort v) { Span<byte> s = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(s, v); _b.AddRange(s); return this; }
    public Buf U32(uint v) { Span<byte> s = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(s, v); _b.AddRange(s); return this; }
    public Buf U64(ulong v) { Span<byte> s = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(s, v); _b.AddRange(s); return this; }
    public Buf Key(ulong objectId, byte type, ulong offset) { Span<byte> s = stackalloc byte[17]; new BtrfsKey(objectId, type, offset).Write(s); _b.AddRange(s); return this; }
    public Buf Uuid(Guid g) { Span<byte> s = stackalloc byte[16]; g.TryWriteBytes(s, bigEndian: true, out _); _b.AddRange(s); return this; }
    public Buf Bytes(ReadOnlySpan<byte> v) { foreach (byte x in v) _b.Add(x); return this; }
    public Buf Str(string s) => Bytes(System.Text.Encoding.UTF8.GetBytes(s));
    public Buf Zeros(int n) { for (int i = 0; i < n; i++) _b.Add(0); return this; }
    public Buf Time(ulong sec, uint nsec) => U64(sec).U32(nsec);
    public int Length => _b.Count;
    public byte[] ToArray() => [.. _b];
}

internal sealed record RecFlags(ulong Value, string Names);

/// <summary>A recorded object or array: its entries in order (name, value); value is ulong, long, string,
/// RecFlags or a nested RecNode.</summary>
internal sealed class RecNode(bool isArray)
{
    public bool IsArray { get; } = isArray;
    public List<(string Name, object Value)> Entries { get; } = [];

    public object Get(string name)
    {
        var hits = Entries.Where(e => e.Name == name).ToList();
        Assert.True(hits.Count == 1, $"expected exactly one field '{name}', found {hits.Count}; fields: {string.Join(", ", Entries.Select(e => e.Name))}");
        return hits[0].Value;
    }

    public bool Has(string name) => Entries.Any(e => e.Name == name);

    public ulong U(string name) => Get(name) switch
    {
        ulong u => u,
        long l when l >= 0 => (ulong)l,
        var v => throw new Xunit.Sdk.XunitException($"field '{name}' is {v?.GetType().Name} {v}, not a number"),
    };

    public string S(string name) => Assert.IsType<string>(Get(name));
    public RecFlags F(string name) => Assert.IsType<RecFlags>(Get(name));
    public RecNode Obj(string name) { var n = Assert.IsType<RecNode>(Get(name)); Assert.False(n.IsArray); return n; }
    public RecNode Arr(string name) { var n = Assert.IsType<RecNode>(Get(name)); Assert.True(n.IsArray); return n; }

    /// <summary>Elements of an array that are objects.</summary>
    public List<RecNode> Objects => Entries.Select(e => Assert.IsType<RecNode>(e.Value)).ToList();

    public List<string> Names => Entries.Select(e => e.Name).ToList();
}

/// <summary>An <see cref="IItemWriter"/> that records everything, checks nesting, and counts problems.</summary>
internal sealed class RecordingItemWriter : IItemWriter
{
    private readonly Stack<RecNode> _stack = new();

    public RecordingItemWriter() { Root = new RecNode(false); _stack.Push(Root); }

    public RecNode Root { get; }
    public List<string> Problems { get; } = [];
    public bool Balanced => _stack.Count == 1;
    private RecNode Current => _stack.Peek();

    public void Field(string name, ulong value) => Current.Entries.Add((name, value));
    public void Field(string name, long value) => Current.Entries.Add((name, value));
    public void Field(string name, string value) => Current.Entries.Add((name, value));
    public void Flags(string name, ulong value, string names) => Current.Entries.Add((name, new RecFlags(value, names)));

    public void BeginObject(string? name)
    {
        var n = new RecNode(false);
        Current.Entries.Add((name ?? "", n));
        _stack.Push(n);
    }

    public void EndObject()
    {
        Assert.True(_stack.Count > 1 && !Current.IsArray, "EndObject without an open object");
        _stack.Pop();
    }

    public void BeginArray(string name)
    {
        var n = new RecNode(true);
        Current.Entries.Add((name, n));
        _stack.Push(n);
    }

    public void EndArray()
    {
        Assert.True(_stack.Count > 1 && Current.IsArray, "EndArray without an open array");
        _stack.Pop();
    }

    public void Problem(string message) => Problems.Add(message);
}

internal static class Dec
{
    public static readonly ItemContext Ctx = new(ChecksumType.Crc32c, 4096, 16384);

    /// <summary>Decodes and checks the writer was left balanced.</summary>
    public static RecordingItemWriter Run(BtrfsKey key, byte[] data, ItemContext? ctx = null)
    {
        var w = new RecordingItemWriter();
        ItemDecoder.Decode(ctx ?? Ctx, key, data, w);
        Assert.True(w.Balanced, "decoder left a container open");
        return w;
    }

    public static RecordingItemWriter Run(ItemType type, byte[] data, ulong objectId = 256, ulong offset = 0) =>
        Run(new BtrfsKey(objectId, (byte)type, offset), data);
}
