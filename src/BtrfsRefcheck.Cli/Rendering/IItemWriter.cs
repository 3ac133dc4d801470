using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Cli.Rendering;

/// <summary>Receives the decoded fields of an item. One decoder feeds both the text and the JSON renderer.
/// Names are snake_case like btrfs-progs' field names (e.g. "disk_bytenr", "refs", "flags").</summary>
public interface IItemWriter
{
    void Field(string name, ulong value);
    void Field(string name, long value);
    void Field(string name, string value);

    /// <summary>A bit field: the number and its decoded names ("TREE_BLOCK|FULL_BACKREF").</summary>
    void Flags(string name, ulong value, string names);

    /// <summary>Opens a nested object; <paramref name="name"/> is null for an element of an array.</summary>
    void BeginObject(string? name);
    void EndObject();
    void BeginArray(string name);
    void EndArray();

    /// <summary>The item could not be decoded fully (truncated, bad size, unknown type). Decoding stops or goes on as the decoder sees fit; it never throws.</summary>
    void Problem(string message);
}

/// <summary>What a decoder needs to know about the filesystem besides the item itself.</summary>
public readonly record struct ItemContext(ChecksumType CsumType, uint SectorSize, uint NodeSize)
{
    public int CsumSize => Checksum.Length(CsumType);
}
