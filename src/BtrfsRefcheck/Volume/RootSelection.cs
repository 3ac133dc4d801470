using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>Root selection: which root tree and chunk tree the check reads. The library speaks of "backup root N";
/// the caller names its own option for it.</summary>
internal static class RootSelection
{
    /// <summary>Backup roots, newest tree root generation first (slots that were never written are skipped).</summary>
    private static IEnumerable<(int Index, ulong TreeRoot, int TreeLevel, ulong TreeGen, ulong ChunkRoot, int ChunkLevel, ulong ChunkGen)> BackupRootsNewestFirst(BtrfsVolume vol)
    {
        var list = new List<(int, ulong, int, ulong, ulong, int, ulong)>();
        for (int i = 0; i < Superblock.BackupRootCount; i++)
        {
            var b = vol.Super.GetBackupRoot(i);
            if (b.TreeRoot == 0 && b.ChunkRoot == 0) continue;
            list.Add((i, b.TreeRoot, b.TreeRootLevel, b.TreeRootGen, b.ChunkRoot, b.ChunkRootLevel, b.ChunkRootGen));
        }
        return list.OrderByDescending(x => x.Item4);
    }

    private static bool RootReadable(BtrfsVolume vol, ulong bytenr, int level, out string why)
    {
        var r = vol.ReadTreeBlock(bytenr);
        if (r.Block == null) { why = r.Describe(); return false; }
        if (r.Block.Level != level || level >= Header.MaxLevel) { why = $"level {r.Block.Level}, expected {level}"; return false; }
        why = "";
        return true;
    }

    /// <summary>The chunk root to load: the superblock's, the asked backup root's, or (the superblock's unreadable) the
    /// newest readable backup's; then loads it.</summary>
    internal static void ChooseChunkTreeAndLoad(BtrfsVolume vol, int? backup)
    {
        var primary = new RootChoice(vol.Super.ChunkRoot, vol.Super.ChunkRootLevel, vol.Super.ChunkRootGeneration, null);
        RootChoice chosen = primary;
        if (backup is { } n)
        {
            var b = vol.Super.GetBackupRoot(n);
            var cand = new RootChoice(b.ChunkRoot, b.ChunkRootLevel, b.ChunkRootGen, n);
            if (b.ChunkRoot != 0 && RootReadable(vol, b.ChunkRoot, b.ChunkRootLevel, out _)) chosen = cand;
            else vol.Notes.Add($"backup root {n} has no readable chunk root; using the superblock's chunk root");
        }
        else if (!RootReadable(vol, primary.Bytenr, primary.Level, out string why))
        {
            foreach (var b in BackupRootsNewestFirst(vol))
            {
                if (b.ChunkRoot == 0 || b.ChunkRoot == primary.Bytenr || !RootReadable(vol, b.ChunkRoot, b.ChunkLevel, out _)) continue;
                chosen = new RootChoice(b.ChunkRoot, b.ChunkLevel, b.ChunkGen, b.Index);
                vol.Findings.Add(new Finding(FindingCode.ChunkTreeFallback, Severity.Error,
                    $"chunk root {primary.Bytenr} is unreadable ({why}); using backup root {b.Index}'s chunk root {b.ChunkRoot} (generation {b.ChunkGen})",
                    Bytenr: primary.Bytenr, Tree: ObjectIds.ChunkTree, Expected: primary.Bytenr.ToString(), Found: b.ChunkRoot.ToString()));
                break;
            }
        }
        vol.ChunkTree = chosen;
        if (chosen.BackupIndex is { } bi) vol.Notes.Add($"using backup root {bi}'s chunk root {chosen.Bytenr} (generation {chosen.Generation})");
        ChunkMapLoader.LoadChunkTree(vol, chosen);
    }

    /// <summary>The root tree to check: the superblock's, the asked backup root, or (the superblock's unreadable) the
    /// newest readable backup root; and the chunk tree of the same generation.</summary>
    internal static void ChooseRootTree(BtrfsVolume vol, int? backup)
    {
        var primary = new RootChoice(vol.Super.Root, vol.Super.RootLevel, vol.Super.Generation, null, vol.Super.BytesUsed);
        RootChoice chosen = primary;
        if (backup is { } n)
        {
            var b = vol.Super.GetBackupRoot(n);
            if (b.TreeRoot == 0) throw new VolumeException($"backup root {n}: that backup root slot is empty") { BackupRoot = n };
            chosen = new RootChoice(b.TreeRoot, b.TreeRootLevel, b.TreeRootGen, n, b.BytesUsed);
            vol.Notes.Add($"using backup root {n}: root tree {b.TreeRoot} (generation {b.TreeRootGen}), as asked");
        }
        else if (!RootReadable(vol, primary.Bytenr, primary.Level, out string why))
        {
            foreach (var b in BackupRootsNewestFirst(vol))
            {
                if (b.TreeRoot == 0 || b.TreeRoot == primary.Bytenr || !RootReadable(vol, b.TreeRoot, b.TreeLevel, out _)) continue;
                chosen = new RootChoice(b.TreeRoot, b.TreeLevel, b.TreeGen, b.Index, vol.Super.GetBackupRoot(b.Index).BytesUsed);
                vol.Findings.Add(new Finding(FindingCode.RootTreeFallback, Severity.Error,
                    $"root tree {primary.Bytenr} is unreadable ({why}); using backup root {b.Index}: root tree {b.TreeRoot} (generation {b.TreeGen}); what changed since then is not seen",
                    Bytenr: primary.Bytenr, Tree: ObjectIds.RootTree, Expected: primary.Bytenr.ToString(), Found: b.TreeRoot.ToString()));
                vol.Notes.Add($"root tree unreadable; using backup root {b.Index} (generation {b.TreeGen})");
                break;
            }
        }
        vol.RootTree = chosen;
        vol.CheckedChunkTree = vol.ChunkTree;
        if (chosen.BackupIndex is { } idx)
        {
            var b = vol.Super.GetBackupRoot(idx);
            if (b.ChunkRoot != 0 && b.ChunkRoot != vol.ChunkTree.Bytenr && RootReadable(vol, b.ChunkRoot, b.ChunkRootLevel, out _))
                vol.CheckedChunkTree = new RootChoice(b.ChunkRoot, b.ChunkRootLevel, b.ChunkRootGen, idx);
        }
    }

}
