using System.Text;

namespace BtrfsRefcheck.Format.Items;

/// <summary>Text helpers shared by the item views and <see cref="ItemDecoder"/>: escaping on-disk names the way
/// btrfs-progs prints them, hex dumps with a cap, and bit-flag names.</summary>
public static class ItemText
{
    /// <summary>Names and other on-disk strings as text. Valid UTF-8 is kept (including non-ASCII letters);
    /// control characters are escaped C-style (<c>\n</c>, <c>\t</c>, ...), a backslash becomes <c>\\</c>, and each
    /// byte that is not part of valid UTF-8 becomes a three-digit octal escape (<c>\377</c>), as
    /// btrfs-progs' <c>string_print_escape_special</c> does for unprintable bytes.</summary>
    public static string Escape(ReadOnlySpan<byte> bytes)
    {
        // Fast path: printable ASCII with no backslash needs no work.
        bool plain = true;
        foreach (byte b in bytes)
        {
            if (b < 0x20 || b >= 0x7f || b == (byte)'\\') { plain = false; break; }
        }
        if (plain) return Encoding.ASCII.GetString(bytes);

        var sb = new StringBuilder(bytes.Length + 8);
        while (!bytes.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(bytes, out Rune rune, out int consumed);
            if (status != System.Buffers.OperationStatus.Done)
            {
                // Invalid or truncated sequence: escape the first byte and resynchronise on the next.
                AppendOctal(sb, bytes[0]);
                bytes = bytes[1..];
                continue;
            }
            int v = rune.Value;
            switch (v)
            {
                case '\a': sb.Append("\\a"); break;
                case '\b': sb.Append("\\b"); break;
                case 0x1b: sb.Append("\\e"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\v': sb.Append("\\v"); break;
                case '\\': sb.Append("\\\\"); break;
                default:
                    if (Rune.IsControl(rune))
                    {
                        foreach (byte b in bytes[..consumed]) AppendOctal(sb, b);
                    }
                    else
                    {
                        sb.Append(rune.ToString());
                    }
                    break;
            }
            bytes = bytes[consumed..];
        }
        return sb.ToString();
    }

    private static void AppendOctal(StringBuilder sb, byte b) =>
        sb.Append('\\').Append((char)('0' + (b >> 6))).Append((char)('0' + ((b >> 3) & 7))).Append((char)('0' + (b & 7)));

    /// <summary>Lower-case hex of at most <paramref name="cap"/> bytes; <paramref name="truncated"/> tells whether
    /// bytes were left out.</summary>
    public static string Hex(ReadOnlySpan<byte> bytes, int cap, out bool truncated)
    {
        truncated = bytes.Length > cap;
        return Convert.ToHexStringLower(truncated ? bytes[..cap] : bytes);
    }

    /// <summary>"A|B|0x40": names of the set bits in table order, then any unknown bits as one hex number.
    /// Empty when <paramref name="value"/> is zero.</summary>
    public static string FlagNames(ulong value, ReadOnlySpan<(ulong Bit, string Name)> table)
    {
        if (value == 0) return "";
        var sb = new StringBuilder();
        ulong known = 0;
        foreach (var (bit, name) in table)
        {
            known |= bit;
            if ((value & bit) == 0) continue;
            if (sb.Length > 0) sb.Append('|');
            sb.Append(name);
        }
        ulong unknown = value & ~known;
        if (unknown != 0)
        {
            if (sb.Length > 0) sb.Append('|');
            sb.Append("0x").Append(unknown.ToString("x"));
        }
        return sb.ToString();
    }
}
