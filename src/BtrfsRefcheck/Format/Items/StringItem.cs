namespace BtrfsRefcheck.Format.Items;

/// <summary>STRING_ITEM (debugging aid): the item is a raw, unterminated string.</summary>
public readonly ref struct StringItem
{
    private readonly ReadOnlySpan<byte> _d;
    public StringItem(ReadOnlySpan<byte> d) => _d = d;
    public ReadOnlySpan<byte> Bytes => _d;
    public string Text => ItemText.Escape(_d);
}
