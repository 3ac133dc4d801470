using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Tests.Fuzz;

/// <summary>One piece of one copy of a tree block on a device: block bytes [<see cref="BlockOffset"/>, +Length)
/// live at [<see cref="Physical"/>, +Length) of device <see cref="Device"/> (index into the fixture's paths).</summary>
public readonly record struct PhysicalPiece(int Device, long Physical, int BlockOffset, int Length);

/// <summary>A tree block reached by walking every tree of the pristine image: what the checker reads.</summary>
public sealed class LiveBlock
{
    public required ulong Logical { get; init; }
    public required int Level { get; init; }
    public required ulong TreeId { get; init; }
    public required string TreeName { get; init; }
    public required int NrItems { get; init; }
    /// <summary>The node that points at this block (first one met), or null for a tree's root block.</summary>
    public required ulong? Parent { get; init; }
    public required int ParentSlot { get; init; }
    /// <summary>The parent's next key (the exclusive end of the key range this block covers), when it has one.</summary>
    public required BtrfsKey? EndKey { get; init; }
    /// <summary>Per copy (index = copy number), where the block's bytes are on the devices.</summary>
    public required IReadOnlyList<IReadOnlyList<PhysicalPiece>> Copies { get; init; }
    public bool IsLeaf => Level == 0;

    public override string ToString() => $"{(IsLeaf ? "leaf" : "node")} {Logical} (tree {TreeName}, level {Level}, {NrItems} items)";
}

/// <summary>One device of a fixture: its pristine path, file length and the size its superblock's dev_item claims.</summary>
public sealed record FuzzDevice(string Path, long Length, ulong DevId, ulong TotalBytes);

/// <summary>A pristine fixture image (one or more device files) and what the fuzzer needs to know about it, learned
/// once with the library itself: every live tree block and where each copy of it lies, the superblock, and the
/// checker's exit code on the unchanged image (the baseline a "no real change" mutation must reproduce).</summary>
public sealed class FuzzFixture : IDisposable
{
    private readonly Dictionary<ulong, LiveBlock> _byLogical = [];

    public string Name { get; }
    public IReadOnlyList<FuzzDevice> Devices { get; }
    public IReadOnlyList<LiveBlock> Blocks { get; }
    /// <summary>Live blocks grouped by tree id (a block shared by snapshots is listed under the first tree that reached it).</summary>
    public IReadOnlyList<IReadOnlyList<LiveBlock>> BlocksByTree { get; }
    public BtrfsVolume Volume { get; }
    public byte[] Super { get; }
    public ChecksumType CsumType { get; }
    public int NodeSize { get; }
    public uint SectorSize { get; }

    /// <summary>Exit code of <c>check</c> on the pristine image (0 for every fixture we use).</summary>
    public int BaselineCheckExit { get; set; } = -1;

    private FuzzFixture(string name, IReadOnlyList<string> paths)
    {
        Name = name;
        Volume = BtrfsVolume.Open(paths, new VolumeOptions(), new FindingBag());
        try
        {
            Super = Volume.Super.Bytes.ToArray();
            CsumType = Volume.CsumType;
            NodeSize = (int)Volume.NodeSize;
            SectorSize = Volume.SectorSize;
            var devs = new List<FuzzDevice>();
            foreach (var p in paths)
            {
                var dev = Volume.Devices.First(d => Path.GetFullPath(d.Path) == Path.GetFullPath(p));
                var copy = Volume.AllCopies.First(c => c.Device == dev && c.IsValid);
                devs.Add(new FuzzDevice(p, dev.Length, copy.Superblock!.DevItem.DevId, copy.Superblock.DevItem.TotalBytes));
            }
            Devices = devs;
            var blocks = new List<LiveBlock>();
            var byTree = new Dictionary<ulong, List<LiveBlock>>();
            var walker = new TreeWalker(Volume, new FindingBag());
            foreach (var root in TreeRoots.Enumerate(Volume, new FindingBag()))
            {
                var collector = new Collector(this, root, blocks, byTree);
                walker.Walk(root, collector);
            }
            Blocks = blocks;
            FullBackref = FullBackrefBlocks();
            BlocksByTree = byTree.OrderBy(kv => kv.Key).Select(kv => (IReadOnlyList<LiveBlock>)kv.Value).ToList();
        }
        catch
        {
            Volume.Dispose();
            throw;
        }
    }

    /// <summary>Tree blocks whose extent item carries FULL_BACKREF. Their header owner is bound to no back-ref (btrfs
    /// check marks them owner_ref_checked without a check), so a change of owner to another subvolume id is not
    /// detectable by any checker.</summary>
    public IReadOnlySet<ulong> FullBackref { get; private set; } = new HashSet<ulong>();

    private HashSet<ulong> FullBackrefBlocks()
    {
        var set = new HashSet<ulong>();
        foreach (var b in Blocks)
        {
            if (b.TreeId != ObjectIds.ExtentTree || !b.IsLeaf) continue;
            var view = new BlockView(ReadBlock(b));
            for (int i = 0; i < view.Count; i++)
            {
                var key = view.ItemKey(i);
                if (key.ItemType is not (ItemType.ExtentItem or ItemType.MetadataItem)) continue;
                var data = view.ItemData(i);
                if (data.Length >= 24 && (BinaryPrimitives.ReadUInt64LittleEndian(data[16..]) & (1UL << 8)) != 0) set.Add(key.ObjectId);
            }
        }
        return set;
    }

    /// <summary>Opens the fixture whose device files are <paramref name="paths"/> (they are never written).</summary>
    public static FuzzFixture Open(string name, IReadOnlyList<string> paths) => new(name, paths);

    public LiveBlock? Block(ulong logical) => _byLogical.GetValueOrDefault(logical);

    /// <summary>The verified bytes of live block <paramref name="b"/> (a fresh copy).</summary>
    public byte[] ReadBlock(LiveBlock b)
    {
        TreeBlockRead read;
        lock (_byLogical) read = Volume.ReadTreeBlock(b.Logical); // the block cache is not thread-safe
        if (read.Block == null) throw new InvalidOperationException($"fixture {Name}: live block {b.Logical} unreadable: {read.Describe()}");
        return (byte[])read.Block.Data.Clone();
    }

    public int DeviceIndex(ulong devid)
    {
        for (int i = 0; i < Devices.Count; i++) if (Devices[i].DevId == devid) return i;
        return -1;
    }

    /// <summary>Where bytes [<paramref name="logical"/>, +<paramref name="length"/>) of copy <paramref name="copy"/> are.</summary>
    public List<PhysicalPiece> Map(ulong logical, int length, int copy)
    {
        var chunk = Volume.Chunks.Find(logical) ?? throw new InvalidOperationException($"logical {logical} is in no chunk");
        var pieces = new List<PhysicalPiece>();
        int done = 0;
        while (done < length)
        {
            var loc = chunk.Map(logical + (ulong)done, copy, out ulong contiguous);
            int n = (int)Math.Min((ulong)(length - done), contiguous);
            int dev = DeviceIndex(loc.DevId);
            if (dev < 0) throw new InvalidOperationException($"devid {loc.DevId} is not a device of fixture {Name}");
            pieces.Add(new PhysicalPiece(dev, (long)loc.Offset, done, n));
            done += n;
        }
        return pieces;
    }

    public void Dispose() => Volume.Dispose();

    /// <summary>Copies stored as such: the mirrors. A RAID5/6 chunk has one (its data stripe); the checker's second way
    /// to read it, the rebuild from parity, is not a copy the fuzzer writes (so parity goes stale: only what the
    /// checker reads first changes).</summary>
    public static int MirrorCopies(Chunk chunk) => chunk.Profile is RaidProfile.Raid5 or RaidProfile.Raid6 ? 1 : chunk.Copies;

    private sealed class Collector(FuzzFixture fx, TreeRoot root, List<LiveBlock> blocks, Dictionary<ulong, List<LiveBlock>> byTree) : ITreeVisitor
    {
        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
        {
            if (!fx._byLogical.ContainsKey(block.Logical))
            {
                var chunk = fx.Volume.Chunks.Find(block.Logical)!;
                var copies = new List<IReadOnlyList<PhysicalPiece>>();
                for (int c = 0; c < MirrorCopies(chunk); c++) copies.Add(fx.Map(block.Logical, fx.NodeSize, c));
                var lb = new LiveBlock
                {
                    Logical = block.Logical, Level = block.Level, TreeId = root.Id, TreeName = root.Name,
                    NrItems = block.View.Count, Parent = ctx.ParentBytenr, ParentSlot = ctx.ParentSlot, EndKey = ctx.EndKey,
                    Copies = copies,
                };
                fx._byLogical[block.Logical] = lb;
                blocks.Add(lb);
                if (!byTree.TryGetValue(root.Id, out var list)) byTree[root.Id] = list = [];
                list.Add(lb);
            }
            return valid;
        }
    }
}
