using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>Chunk map loading: the sys_chunk_array first, then every CHUNK_ITEM and DEV_ITEM of the chosen chunk tree
/// into the volume's <see cref="ChunkMap"/> and device list.</summary>
internal static class ChunkMapLoader
{
    /// <summary>The superblock's sys_chunk_array: the SYSTEM chunks that locate the chunk tree.</summary>
    internal static void LoadSysChunkArray(BtrfsVolume vol)
    {
        var arr = vol.Super.SysChunkArray;
        int pos = 0;
        while (pos < arr.Length)
        {
            if (arr.Length - pos < BtrfsKey.Size + ChunkItem.HeaderSize)
            {
                SysArrayProblem(vol, $"{arr.Length - pos} trailing bytes at offset {pos}, too short for a chunk");
                return;
            }
            var key = BtrfsKey.Read(arr[pos..]);
            pos += BtrfsKey.Size;
            if (key.ItemType != ItemType.ChunkItem)
            {
                SysArrayProblem(vol, $"entry at offset {pos - BtrfsKey.Size} has key type {ItemTypes.Name(key.Type)}, expected CHUNK_ITEM");
                return;
            }
            var ci = new ChunkItem(arr[pos..]);
            long size = ci.ImpliedSize;
            if (pos + size > arr.Length)
            {
                SysArrayProblem(vol, $"chunk at logical {key.Offset} claims {ci.NumStripes} stripes ({size} bytes), only {arr.Length - pos} left");
                return;
            }
            var chunk = ChunkMap.Decode(key, arr.Slice(pos, (int)size), out string? problem);
            pos += (int)size;
            if (chunk == null) { if (problem != null) SysArrayProblem(vol, $"chunk at logical {key.Offset}: {problem}"); continue; }
            var rules = new SysArrayRuleSink(vol.Findings, vol.ChosenCopy.Device.Path, key.Offset);
            ChunkRules.Check(key.Offset, new ChunkItem(arr.Slice(pos - (int)size, (int)size)), vol.Super.SectorSize, vol.Super.IncompatFlags, ref rules);
            if ((chunk.Type & BlockGroupFlags.System) == 0)
                SysArrayProblem(vol, $"chunk at logical {key.Offset} is {chunk.Type.Describe()}, expected SYSTEM");
            if (vol.Chunks.TryAdd(chunk) is { } clash)
                vol.Findings.Add(new Finding(FindingCode.ChunkOverlap, Severity.Error,
                    $"sys_chunk_array chunk [{chunk.Logical}, {chunk.End}) overlaps chunk [{clash.Logical}, {clash.End})", Bytenr: chunk.Logical));
        }
        if (vol.Chunks.Chunks.Count == 0)
            throw new VolumeException("the superblock's sys_chunk_array holds no usable chunk; cannot locate the chunk tree");
    }

    /// <summary>A sys_chunk_array chunk that breaks a rule of btrfs_check_chunk_valid: 200 at the chunk's logical start.</summary>
    private readonly struct SysArrayRuleSink(FindingBag findings, string device, ulong logical) : IChunkRuleSink
    {
        public void Broken(string what, string? expected, string? found) =>
            findings.Add(new Finding(FindingCode.SysChunkArrayInvalid, Severity.Error, $"sys_chunk_array: chunk at logical {logical}: {what}",
                Bytenr: logical, Device: device, Expected: expected, Found: found));
    }

    private static void SysArrayProblem(BtrfsVolume vol, string message) =>
        vol.Findings.Add(new Finding(FindingCode.SysChunkArrayInvalid, Severity.Error, "sys_chunk_array: " + message,
            Device: vol.ChosenCopy.Device.Path));

    /// <summary>Reads every leaf of the chunk tree: CHUNK_ITEMs extend the map, DEV_ITEMs list the devices.</summary>
    internal static void LoadChunkTree(BtrfsVolume vol, RootChoice root)
    {
        var seen = new HashSet<ulong>();
        var stack = new Stack<(ulong Bytenr, int Level)>();
        stack.Push((root.Bytenr, root.Level));
        while (stack.Count > 0)
        {
            var (bytenr, level) = stack.Pop();
            if (!seen.Add(bytenr)) continue;
            var read = vol.ReadTreeBlock(bytenr);
            if (read.Block == null)
            {
                // The tree walk reports the unreadable block itself; here: what it means for address mapping.
                TreeBlockReader.ChunksHidden(vol.Findings, bytenr, read);
                continue;
            }
            var view = read.Block.View;
            if (bytenr == root.Bytenr) vol.ChunkTreeUuid = Uuids.Read(view.Header.ChunkTreeUuid);
            if (view.Header.Level != level || level >= Header.MaxLevel) continue; // the tree walker reports it
            try
            {
                if (level > 0)
                {
                    for (int i = 0; i < view.Count; i++)
                        stack.Push((view.KeyPtr(i).BlockPtr, level - 1));
                    continue;
                }
                for (int i = 0; i < view.Count; i++)
                {
                    var key = view.ItemKey(i);
                    if (key.ItemType == ItemType.ChunkItem) AddChunkItem(vol, bytenr, i, key, view.ItemData(i));
                    else if (key.ItemType == ItemType.DevItem)
                    {
                        var data = view.ItemData(i);
                        if (data.Length < DevItem.Size) continue;
                        var di = new DevItem(data);
                        vol.AddDevItem(new DevItemInfo(di.DevId, di.Uuid, di.Fsid, di.TotalBytes, di.BytesUsed));
                    }
                }
            }
            catch (BtrfsFormatException) { /* structural damage: the tree walker reports it with context */ }
        }
    }

    private static void AddChunkItem(BtrfsVolume vol, ulong block, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        var chunk = ChunkMap.Decode(key, data, out string? problem);
        if (chunk == null)
        {
            if (problem == null) return; // fully remapped: no stripes to map
            vol.Findings.Add(new Finding(FindingCode.ChunkItemInvalid, Severity.Error, $"chunk item unusable: {problem}",
                Bytenr: block, Tree: ObjectIds.ChunkTree, Slot: slot, Key: key));
            vol._unusableChunkItems.Add((block, slot));
            return;
        }
        var clash = vol.Chunks.TryAdd(chunk);
        if (clash == null) return;
        bool same = clash.Logical == chunk.Logical && clash.Length == chunk.Length && clash.Type == chunk.Type &&
                    clash.Stripes.AsSpan().SequenceEqual(chunk.Stripes);
        if (same) return; // SYSTEM chunks appear in both the sys_chunk_array and the chunk tree
        bool fromSys = (clash.Type & BlockGroupFlags.System) != 0 && clash.Logical == chunk.Logical;
        vol.Findings.Add(new Finding(fromSys ? FindingCode.ChunkMismatchSysArray : FindingCode.ChunkOverlap, Severity.Error,
            fromSys ? $"chunk tree item for [{chunk.Logical}, {chunk.End}) differs from the sys_chunk_array copy"
                    : $"chunk [{chunk.Logical}, {chunk.End}) overlaps chunk [{clash.Logical}, {clash.End}) (chunk tree leaf {block})",
            Bytenr: chunk.Logical, Tree: ObjectIds.ChunkTree, Slot: slot, Key: key));
    }

}
