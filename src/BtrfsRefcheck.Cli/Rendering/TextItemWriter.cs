using System.Text;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Cli.Rendering;

/// <summary>Compact human text in the spirit of <c>btrfs inspect-internal dump-tree</c>: the item's top-level
/// fields go on one line as space-separated <c>name value</c> pairs (<c>refs 1 gen 7 flags TREE_BLOCK</c>); a named
/// array gets a line with its name and then one deeper-indented line per element; a named object gets its own
/// deeper-indented line starting with its name; problems are <c>!! message</c> lines. <see cref="ItemDecoder.Decode"/>
/// ends the pending line itself (through <see cref="IItemBodyWriter.EndItem"/>); when feeding the writer by hand,
/// call <see cref="Flush"/> after each item.</summary>
public sealed class TextItemWriter : IItemBodyWriter
{
    private readonly TextWriter _out;
    private readonly string _indent;
    private readonly string _indentUnit;
    private readonly StringBuilder _line = new();
    private readonly Stack<bool> _stack = new(); // true = array
    private int _depth;

    /// <param name="output">Where lines go.</param>
    /// <param name="indent">Prefix of every line (the item body's indentation).</param>
    /// <param name="indentUnit">Added once per nesting level.</param>
    public TextItemWriter(TextWriter output, string indent = "\t\t", string indentUnit = "\t")
    {
        _out = output;
        _indent = indent;
        _indentUnit = indentUnit;
    }

    private bool InArray => _stack.Count > 0 && _stack.Peek();

    public void Field(string name, ulong value) => Scalar(name, value.ToString());
    public void Field(string name, long value) => Scalar(name, value.ToString());
    public void Field(string name, string value) => Scalar(name, value);

    /// <summary>Shown as the names ("DATA|TREE_BLOCK"); "none" when the value is zero; hex when only the number is known.</summary>
    public void Flags(string name, ulong value, string names) =>
        Scalar(name, names.Length > 0 ? names : value == 0 ? "none" : $"0x{value:x}");

    public void BeginObject(string? name)
    {
        FlushLine();
        bool element = InArray;
        _stack.Push(false);
        if (!element) _depth++;
        StartLine();
        if (name != null) _line.Append(name);
    }

    public void EndObject()
    {
        FlushLine();
        if (_stack.Count == 0) return;
        _stack.Pop();
        // An object inside an array sits at the array's depth; a named object went one level deeper.
        if (!InArray) _depth = Math.Max(0, _depth - 1);
    }

    public void BeginArray(string name)
    {
        FlushLine();
        bool element = InArray;
        if (!element || name.Length > 0)
        {
            StartLine();
            _line.Append(name);
            FlushLine();
        }
        _stack.Push(true);
        _depth++;
    }

    public void EndArray()
    {
        FlushLine();
        if (_stack.Count == 0) return;
        _stack.Pop();
        _depth = Math.Max(0, _depth - 1);
    }

    public void Problem(string message)
    {
        FlushLine();
        StartLine();
        _line.Append("!! ").Append(message);
        FlushLine();
    }

    /// <summary>Ends the pending line and resets nesting, ready for the next item.</summary>
    public void Flush()
    {
        FlushLine();
        _stack.Clear();
        _depth = 0;
    }

    void IItemBodyWriter.BeginItem() => Flush();
    void IItemBodyWriter.EndItem() => Flush();

    private void Scalar(string name, string value)
    {
        if (InArray)
        {
            // A scalar array element gets its own line.
            FlushLine();
            StartLine();
            _line.Append(name).Append(' ').Append(value);
            FlushLine();
            return;
        }
        if (_line.Length == 0) StartLine();
        else if (!EndsWithIndent()) _line.Append(' ');
        _line.Append(name).Append(' ').Append(value);
    }

    private int _lineIndentLength;

    private void StartLine()
    {
        _line.Append(_indent);
        for (int i = 0; i < _depth; i++) _line.Append(_indentUnit);
        _lineIndentLength = _line.Length;
    }

    private bool EndsWithIndent() => _line.Length == _lineIndentLength;

    private void FlushLine()
    {
        if (_line.Length > 0 && !EndsWithIndent()) _out.WriteLine(_line.ToString());
        _line.Clear();
        _lineIndentLength = 0;
    }
}
