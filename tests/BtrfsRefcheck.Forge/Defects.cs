using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Forge;

/// <summary>A named defect of the catalog: what the command line lists and the tests iterate.</summary>
/// <param name="Name">Command-line name.</param>
/// <param name="Codes">The findings it produces, as the checker reports them.</param>
/// <param name="Needs">What the source image must offer.</param>
/// <param name="Apply">Applies it to a forged image.</param>
public sealed record DefectSpec(string Name, FindingCode[] Codes, string Needs, Func<ForgedImage, ForgedDefect> Apply)
{
    public string CodesText => string.Join(" + ", Codes.Select(c => $"{(int)c} {c}"));
}

/// <summary>Every defect the forge can apply, by name.</summary>
public static class Defects
{
    private const string AnyImage = "any image, skinny or not";

    public static readonly IReadOnlyList<DefectSpec> All =
    [
        new("duplicate-tree-block-ref", [FindingCode.DuplicateTreeBlockRef], AnyImage, f => f.DuplicateTreeBlockRef()),
        new("duplicate-tree-block-ref-keyed", [FindingCode.DuplicateTreeBlockRef], AnyImage, f => f.DuplicateTreeBlockRefKeyed()),
        new("stale-tree-block-ref", [FindingCode.StaleTreeBlockRef], AnyImage, f => f.StaleTreeBlockRef()),
        new("replace-tree-block-ref-root", [FindingCode.MissingTreeBlockRef, FindingCode.StaleTreeBlockRef], AnyImage, f => f.ReplaceTreeBlockRefRoot()),
        new("missing-tree-block-ref", [FindingCode.MissingTreeBlockRef], "a block with two inline tree refs (kernel images with snapshots)", f => f.MissingTreeBlockRef()),
        new("metadata-refs-mismatch", [FindingCode.ExtentRefsMismatch], AnyImage, f => f.MetadataRefsMismatch()),
        new("data-refs-mismatch", [FindingCode.ExtentRefsMismatch], "a data extent with one EXTENT_DATA_REF", f => f.DataRefsMismatch()),
        new("tree-block-no-extent-item", [FindingCode.TreeBlockNoExtentItem, FindingCode.FreeSpaceMismatch], AnyImage, f => f.TreeBlockNoExtentItem()),
        new("metadata-extent-leaked", [FindingCode.MetadataExtentLeaked, FindingCode.FreeSpaceMismatch], "a metadata block group with free space", f => f.MetadataExtentLeaked()),
        new("metadata-level-mismatch", [FindingCode.MetadataLevelMismatch], AnyImage, f => f.MetadataLevelMismatch()),
        new("inline-refs-out-of-order", [FindingCode.InlineRefsOutOfOrder], "an extent with two inline refs of one type (kernel images)", f => f.InlineRefsOutOfOrder()),
        new("unknown-inline-ref-type", [FindingCode.UnknownInlineRefType], AnyImage, f => f.UnknownInlineRefType()),
        new("unknown-inline-ref-type-in-place", [FindingCode.UnknownInlineRefType, FindingCode.MissingTreeBlockRef, FindingCode.ExtentRefsMismatch], AnyImage, f => f.UnknownInlineRefTypeInPlace()),
        new("data-ref-count-mismatch", [FindingCode.DataRefCountMismatch], "a data extent used by one file extent", f => f.DataRefCountMismatch()),
        new("data-extent-no-extent-item", [FindingCode.DataExtentNoExtentItem, FindingCode.CsumWithoutDataExtent, FindingCode.FreeSpaceMismatch], "a data extent with inline refs only", f => f.DataExtentNoExtentItem()),
        new("orphan-data-extent-item", [FindingCode.OrphanDataExtentItem, FindingCode.FreeSpaceMismatch], "a data block group with free space", f => f.OrphanDataExtentItem()),
        new("extent-overlap", [FindingCode.ExtentOverlap, FindingCode.OrphanDataExtentItem], "a data extent of three sectors or more", f => f.ExtentOverlap()),
        new("block-group-used-mismatch", [FindingCode.BlockGroupUsedMismatch], AnyImage, f => f.BlockGroupUsedMismatch()),
        new("super-bytes-used-mismatch", [FindingCode.SuperBytesUsedMismatch], AnyImage, f => f.SuperBytesUsedMismatch()),
        new("tree-block-bad-copy", [FindingCode.TreeBlockBadCopy], "DUP or RAID1 metadata", f => f.TreeBlockBadCopy(0)),
        new("tree-block-checksum-mismatch", [FindingCode.TreeBlockChecksumMismatch, FindingCode.SubtreeNotChecked, FindingCode.OrphanDataExtentItem], AnyImage + "; 900/604 are warnings, 604 once per data extent of the leaf", f => f.TreeBlockChecksumMismatch()),
    ];

    public static DefectSpec Get(string name) =>
        All.FirstOrDefault(d => d.Name == name) ?? throw new ArgumentException($"unknown defect '{name}' (see --list)", nameof(name));
}
