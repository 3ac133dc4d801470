using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.DelayedRefs;

public sealed record ForgeResult(string Output, string Block, ulong Bytenr, string Description, IReadOnlyList<int> ExpectedCodes);

/// <summary><c>replay --forge OUT --base IMG</c>: copies IMG to OUT and rewrites, in OUT only, one extent item as
/// <see cref="ForgePlanner"/> plans it (the item's leaf edited the way btrfs_extend_item / btrfs_truncate_item do,
/// checksum recomputed, every copy written). The test forge (tests/BtrfsRefcheck.Forge) has the full edit toolkit but
/// the command line must not reference it, so this is the one small writer outside it; it never opens IMG for
/// writing and refuses OUT == IMG.</summary>
public static class EndStateWriter
{
    private const int TreeBlockRefSize = 9;

    public static ForgeResult Forge(Replay r, string baseImage, string output)
    {
        if (!File.Exists(baseImage)) throw new ForgeStateException($"{baseImage}: no such file");
        if (Path.GetFullPath(baseImage) == Path.GetFullPath(output)) throw new ForgeStateException("OUT must not be the base image");
        string block = ForgePlanner.PickBlock(r);
        string tmp = output + ".partial";
        try
        {
            CopySparse(baseImage, tmp);
            ForgePlan plan;
            using (var vol = BtrfsVolume.Open([tmp], null, new FindingBag()))
            {
                var scan = Scan(vol);
                plan = ForgePlanner.Plan(r, block, scan.Values.Select(x => x.Real));
                Write(vol, scan[plan.Bytenr], plan);
            }
            File.Move(tmp, output, overwrite: true);
            return new ForgeResult(output, block, plan.Bytenr, plan.Description, plan.ExpectedCodes);
        }
        catch (VolumeException e) { throw new ForgeStateException($"{baseImage}: {e.Message}"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ForgeStateException(e.Message); }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
    }

    internal sealed record Candidate(RealExtent Real, BtrfsKey Key, ulong Leaf);

    /// <summary>Every tree block extent item the walk can vouch for: reached by a walk, inline TREE_BLOCK_REFs only,
    /// refs equal to their number, no keyed back-refs.</summary>
    internal static Dictionary<ulong, Candidate> Scan(BtrfsVolume vol)
    {
        var v = new ScanVisitor();
        var scratch = new FindingBag();
        var walker = new TreeWalker(vol, scratch);
        var visited = new HashSet<ulong>();
        foreach (var root in TreeRoots.Enumerate(vol, scratch))
            if (!root.IsLog) walker.Walk(root, v, new WalkOptions { Visited = visited });
        var result = new Dictionary<ulong, Candidate>();
        foreach (var (bytenr, (key, leaf, refs, roots)) in v.Items)
        {
            if (!v.Blocks.TryGetValue(bytenr, out var blk) || v.Keyed.Contains(bytenr) || roots == null || refs != (ulong)roots.Count || roots.Count == 0) continue;
            result[bytenr] = new Candidate(new RealExtent(bytenr, refs, roots.Order().ToList(), v.LeafFree[leaf], blk is { Tree: ObjectIds.FsTree, Level: 0 }), key, leaf);
        }
        return result;
    }

    private sealed class ScanVisitor : ITreeVisitor
    {
        public Dictionary<ulong, (ulong Tree, int Level)> Blocks { get; } = [];
        public Dictionary<ulong, (BtrfsKey Key, ulong Leaf, ulong Refs, List<ulong>? Roots)> Items { get; } = [];
        public HashSet<ulong> Keyed { get; } = [];
        public Dictionary<ulong, int> LeafFree { get; } = [];

        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
        {
            var view = block.View;
            Blocks[block.Logical] = (ctx.Tree.Id, view.Header.Level);
            if (!valid || !view.IsLeaf || ctx.Tree.Id != ObjectIds.ExtentTree) return valid;
            int n = view.Count;
            LeafFree[block.Logical] = (n == 0 ? view.Length - Header.Size : (int)view.ItemHeader(n - 1).DataOffset) - n * ItemHeader.Size;
            for (int i = 0; i < n; i++)
            {
                var key = view.ItemKey(i);
                var data = view.ItemData(i);
                if (key.ItemType is ItemType.ExtentItem or ItemType.MetadataItem && data.Length >= ExtentItem.FixedSize)
                {
                    var ei = new ExtentItem(data, key.ItemType);
                    if (!ei.IsTreeBlock || ei.IsFullBackref) continue;
                    var roots = new List<ulong>();
                    var e = ei.InlineRefs;
                    bool ok = true;
                    while (e.MoveNext()) { if (e.Current.Type == ItemType.TreeBlockRef) roots.Add(e.Current.Root); else ok = false; }
                    Items[key.ObjectId] = (key, block.Logical, ei.Refs, ok && e.Error == null ? roots : null);
                }
                else if (key.ItemType is ItemType.TreeBlockRef or ItemType.SharedBlockRef) Keyed.Add(key.ObjectId);
            }
            return true;
        }
    }

    private static void Write(BtrfsVolume vol, Candidate c, ForgePlan plan)
    {
        var read = vol.ReadTreeBlock(c.Leaf);
        if (read.Block == null) throw new ForgeStateException($"extent leaf {c.Leaf} is unreadable");
        var b = (byte[])read.Block.Data.Clone();
        int nr = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(Header.NrItemsAt));
        int slot = -1;
        for (int i = 0; i < nr; i++)
            if (BtrfsKey.Read(b.AsSpan(Header.Size + i * ItemHeader.Size)) == c.Key) { slot = i; break; }
        if (slot < 0) throw new ForgeStateException($"{c.Key} not in leaf {c.Leaf}");
        int hdr = Header.Size + slot * ItemHeader.Size;
        int off = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(hdr + BtrfsKey.Size));
        int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(hdr + BtrfsKey.Size + 4));
        var item = b.AsSpan(Header.Size + off, size);
        int refsStart = new ExtentItem(item, c.Key.ItemType).InlineRefsStart;
        var data = new byte[refsStart + TreeBlockRefSize * plan.NewRoots.Count];
        item[..refsStart].CopyTo(data);
        BinaryPrimitives.WriteUInt64LittleEndian(data, plan.NewRefs);
        for (int i = 0; i < plan.NewRoots.Count; i++)
        {
            data[refsStart + i * TreeBlockRefSize] = (byte)ItemType.TreeBlockRef;
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(refsStart + i * TreeBlockRefSize + 1), plan.NewRoots[i]);
        }
        int delta = data.Length - size;
        int lowest = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(Header.Size + (nr - 1) * ItemHeader.Size + BtrfsKey.Size));
        if (delta > lowest - nr * ItemHeader.Size) throw new ForgeStateException($"leaf {c.Leaf} has no room for {delta} more bytes");
        // item data is packed from the block's end down: the item keeps its end, it and every later item's data move by delta
        b.AsSpan(Header.Size + lowest, off - lowest).CopyTo(b.AsSpan(Header.Size + lowest - delta));
        for (int i = slot; i < nr; i++)
        {
            var h = b.AsSpan(Header.Size + i * ItemHeader.Size + BtrfsKey.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)((int)BinaryPrimitives.ReadUInt32LittleEndian(h) - delta));
        }
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(hdr + BtrfsKey.Size + 4), (uint)data.Length);
        if (delta < 0) b.AsSpan(Header.Size + lowest, -delta).Clear();
        data.CopyTo(b.AsSpan(Header.Size + off - delta));
        Checksum.Compute(vol.CsumType, b.AsSpan(Checksum.FieldSize), b.AsSpan(0, Checksum.FieldSize));
        var chunk = vol.Chunks.Find(c.Leaf) ?? throw new ForgeStateException($"leaf {c.Leaf} is in no chunk");
        for (int copy = 0; copy < chunk.Copies; copy++)
        {
            int done = 0;
            while (done < b.Length)
            {
                var loc = chunk.Map(c.Leaf + (ulong)done, copy, out ulong contiguous);
                int n = (int)Math.Min((ulong)(b.Length - done), contiguous);
                var dev = vol.DeviceById(loc.DevId) ?? throw new ForgeStateException($"devid {loc.DevId} is not open");
                using var h = File.OpenHandle(dev.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
                RandomAccess.Write(h, b.AsSpan(done, n), (long)loc.Offset);
                done += n;
            }
        }
    }

    private static void CopySparse(string source, string dest)
    {
        var buf = new byte[64 * 1024];
        using var src = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20);
        using var dst = new FileStream(dest, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        long length = 0;
        int n;
        while ((n = src.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false)) > 0)
        {
            if (buf.AsSpan(0, n).IndexOfAnyExcept((byte)0) < 0) dst.Seek(n, SeekOrigin.Current);
            else dst.Write(buf, 0, n);
            length += n;
        }
        dst.SetLength(length);
    }
}
