using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Tests;

/// <summary>What the tests that expect silence (or exactly their forged defect) count as a problem.</summary>
public static class FindingFilters
{
    /// <summary>A warning or an error, less the one warning every image made by mkfs.btrfs 6.2 with DUP (or multi-device)
    /// metadata carries: 1102, the free-space entries of its removed temporary chunks. Where that warning itself is the
    /// point it is asserted exactly: SourceFixtureTests and CheckDifferentialTests (against btrfs check 6.19's "Space key
    /// ... has no corresponding block group" lines) and FreeSpaceDamageTests.</summary>
    public static bool IsProblem(this Finding f) =>
        f.Severity >= Severity.Warning && !(f.Code == FindingCode.FreeSpaceStaleMkfsEntries && f.Severity == Severity.Warning);
}
