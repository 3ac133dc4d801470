using System.Text;
using System.Text.Json;

namespace BtrfsRefcheck.Cli;

/// <summary>A Utf8JsonWriter that streams to a TextWriter: call <see cref="Drain"/> now and then to bound memory.</summary>
public sealed class JsonOut : IDisposable
{
    private readonly MemoryStream _buffer = new();
    private readonly TextWriter _out;
    public Utf8JsonWriter W { get; }

    public JsonOut(TextWriter output)
    {
        _out = output;
        W = new Utf8JsonWriter(_buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public void Drain()
    {
        W.Flush();
        if (_buffer.Length == 0) return;
        _out.Write(Encoding.UTF8.GetString(_buffer.GetBuffer(), 0, (int)_buffer.Length));
        _buffer.SetLength(0);
    }

    public void Dispose()
    {
        Drain();
        _out.WriteLine();
        W.Dispose();
    }
}

internal static class JsonWriterExtensions
{
    /// <summary>A property whose value is an array of strings, in order.</summary>
    public static void WriteStringArray(this Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }
}
