using System.Text.Json;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Cli.Rendering;

/// <summary>Writes an item body as one JSON object through a <see cref="Utf8JsonWriter"/>: numbers as JSON numbers
/// (u64 values above 2^53 too), flags as <c>{"value": N, "names": ["A", "B"]}</c>, nested objects and arrays as
/// such, and the problems collected into a <c>"problems"</c> array written last. The output stays well-formed
/// whatever the call order: a problem mid-object is only recorded, containers left open are closed by
/// <see cref="End"/>, a field inside an array becomes a bare value, and an unnamed object inside an object gets
/// the name "item".
/// <para>Usage: after <c>WritePropertyName("body")</c> (or where a value is expected), pass the writer to
/// <see cref="ItemDecoder.Decode"/>: it calls <see cref="IItemBodyWriter.BeginItem"/> / <see cref="IItemBodyWriter.EndItem"/>,
/// which start and complete the object. By hand: <see cref="Begin"/>, fields, <see cref="End"/>. With
/// <see cref="BeginInline"/> the fields go into an object the caller already started (for instance after the key
/// and item offset), and <see cref="End"/> leaves that object open for the caller to close.</para></summary>
public sealed class JsonItemWriter : IItemBodyWriter
{
    private readonly Utf8JsonWriter _json;
    private readonly List<string> _problems = [];
    private readonly Stack<bool> _stack = new(); // true = array
    private bool _open;
    private bool _ownsObject;

    public JsonItemWriter(Utf8JsonWriter json) => _json = json;

    /// <summary>Problems recorded since the last <see cref="Begin"/>.</summary>
    public IReadOnlyList<string> Problems => _problems;

    /// <summary>Starts the item object, as a property of the enclosing object when <paramref name="propertyName"/> is given.</summary>
    public void Begin(string? propertyName = null)
    {
        Reset();
        if (propertyName != null) _json.WriteStartObject(propertyName);
        else _json.WriteStartObject();
        _open = true;
        _ownsObject = true;
    }

    /// <summary>Writes the fields into the object the caller has already started.</summary>
    public void BeginInline()
    {
        Reset();
        _open = true;
        _ownsObject = false;
    }

    /// <summary>Closes any container left open, writes "problems" when there are any, and ends the item object
    /// (unless it was begun with <see cref="BeginInline"/>).</summary>
    public void End()
    {
        if (!_open) return;
        while (_stack.TryPop(out bool isArray))
        {
            if (isArray) _json.WriteEndArray();
            else _json.WriteEndObject();
        }
        if (_problems.Count > 0)
        {
            _json.WriteStartArray("problems");
            foreach (string p in _problems) _json.WriteStringValue(p);
            _json.WriteEndArray();
        }
        if (_ownsObject) _json.WriteEndObject();
        _open = false;
    }

    /// <summary>Decodes one item into a JSON object.</summary>
    public static void WriteItem(Utf8JsonWriter json, in ItemContext ctx, BtrfsKey key, ReadOnlySpan<byte> data, string? propertyName = null)
    {
        var w = new JsonItemWriter(json);
        w.Begin(propertyName);
        ItemDecoder.Decode(ctx, key, data, w);
        w.End();
    }

    void IItemBodyWriter.BeginItem()
    {
        if (!_open) Begin();
    }

    void IItemBodyWriter.EndItem() => End();

    private bool InArray => _stack.Count > 0 && _stack.Peek();

    public void Field(string name, ulong value)
    {
        EnsureOpen();
        if (InArray) _json.WriteNumberValue(value);
        else _json.WriteNumber(name, value);
    }

    public void Field(string name, long value)
    {
        EnsureOpen();
        if (InArray) _json.WriteNumberValue(value);
        else _json.WriteNumber(name, value);
    }

    public void Field(string name, string value)
    {
        EnsureOpen();
        if (InArray) _json.WriteStringValue(value);
        else _json.WriteString(name, value);
    }

    public void Flags(string name, ulong value, string names)
    {
        EnsureOpen();
        if (InArray) _json.WriteStartObject();
        else _json.WriteStartObject(name);
        _json.WriteNumber("value", value);
        _json.WriteStartArray("names");
        foreach (string n in names.Split('|', StringSplitOptions.RemoveEmptyEntries)) _json.WriteStringValue(n);
        _json.WriteEndArray();
        _json.WriteEndObject();
    }

    public void BeginObject(string? name)
    {
        EnsureOpen();
        if (InArray) _json.WriteStartObject();
        else _json.WriteStartObject(name ?? "item");
        _stack.Push(false);
    }

    public void EndObject() => Close(isArray: false);

    public void BeginArray(string name)
    {
        EnsureOpen();
        if (InArray) _json.WriteStartArray();
        else _json.WriteStartArray(name);
        _stack.Push(true);
    }

    public void EndArray() => Close(isArray: true);

    public void Problem(string message)
    {
        EnsureOpen();
        _problems.Add(message);
    }

    /// <summary>Closes the innermost container; a mismatched End closes containers up to the nearest of the asked
    /// kind, an extra End is ignored.</summary>
    private void Close(bool isArray)
    {
        if (!_stack.Contains(isArray)) return;
        while (_stack.TryPop(out bool top))
        {
            if (top) _json.WriteEndArray();
            else _json.WriteEndObject();
            if (top == isArray) break;
        }
    }

    private void EnsureOpen()
    {
        if (!_open) Begin();
    }

    private void Reset()
    {
        _problems.Clear();
        _stack.Clear();
    }
}
