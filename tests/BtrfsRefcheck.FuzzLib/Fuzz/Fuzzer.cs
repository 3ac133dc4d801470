using System.Buffers.Binary;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Tests.Fuzz;

/// <summary>The six mutation kinds; a case picks one uniformly from its seed.</summary>
public enum MutationKind
{
    /// <summary>(a) 1-16 random bytes, a bit flip or a 4/8-byte field set, in one live tree block; checksum
    /// recomputed and written to every copy, so the change reaches the parser.</summary>
    RandomBytes,
    /// <summary>(b) as (a), but the old checksum is kept; written to every copy or to copy 0 only.</summary>
    KeepChecksum,
    /// <summary>(c) a structural edit (duplicated/swapped item headers or key pointers, nritems, levels, node
    /// pointers at itself/its parent/a random address/another tree's block); checksum recomputed.</summary>
    Structural,
    /// <summary>(d) a superblock field (roots, levels, sys_chunk_array bytes, sizes, num_devices, csum_type) in
    /// every superblock copy of every device; superblock checksum recomputed.</summary>
    Superblock,
    /// <summary>(e) the image cut short (aligned or not) or a range overwritten with zeros.</summary>
    Truncate,
    /// <summary>(f) 2-5 mutations of kind (a) at once.</summary>
    MultiBlock,
}

/// <summary>What <c>check</c> must answer for a mutated image: the "really changed" rule. Every mutation is classified
/// by comparing the bytes it changed with the on-disk layout of the pristine image (<see cref="Mutation.Class"/> names
/// the deciding part; with several changes the strongest expectation wins).
/// <list type="bullet">
/// <item><see cref="MustDetect"/> (exit != 0): the mutation changed something the checker verifies completely.
///   <list type="bullet">
///   <item>A live tree block whose stored checksum no longer matches (kind b), on every copy or on copy 0 only (the checker
///     reads copy 0 first and reports the bad copy).</item>
///   <item>Tree block header fields (checksum recomputed): fsid, bytenr, flags other than RELOC, chunk tree uuid,
///     generation, owner, level; nritems raised, nritems of a node, nritems 0 in a leaf below a node, and nritems 0 in
///     the root leaf of the root, extent, chunk or dev tree (the filesystem loses its trees / extent items / chunks /
///     dev extents).</item>
///   <item>Leaf item headers: a data offset or size that breaks the tiling of the data area (item 0 ends at the block
///     end, each item ends where the previous starts); a key that breaks the strict key order, differs from the
///     parent's key (slot 0) or reaches the parent's next key.</item>
///   <item>Node key pointers: the block address; the key and a non-zero generation when the child is first reached
///     through this node (the checker then compares them with the child's header and first key).</item>
///   <item>Targeted item edits: a ROOT_ITEM's bytenr, level or generation (its tree is walked from them); an
///     EXTENT_ITEM / METADATA_ITEM's refs (must equal the sum of its back-refs).</item>
///   <item>Superblock (every copy of every device, checksum recomputed): fsid, bytenr, magic, root, chunk_root,
///     log_root (unless set to 0 or to another TREE_LOG block, below), root_level, chunk_root_level, log_root_level when
///     there is a log tree or the value is >= 8, nodesize, sectorsize, num_devices, csum_type, sys_chunk_array_size, and
///     sys_chunk_array bytes of a chunk's key type/offset, length, type, num_stripes or stripes.</item>
///   <item>An image cut below the size its dev_item declares; zeros over changed bytes of copy 0 of a live tree block
///     or of a superblock copy.</item>
///   </list></item>
/// <item><see cref="MustBeClean"/> (the pristine image's answer, exit 0): nothing the filesystem uses changed - no byte
///   at all; only free space inside a tree block (between the item headers and the item data, past a node's last
///   pointer) or the unused checksum padding, checksum recomputed; superblock padding; sys_chunk_array bytes past
///   its size; an image cut above its declared device size.</item>
/// <item><see cref="MayDetect"/> (only: no crash, no hang, bounded memory; the detection rate is reported per class):
///   changes whose consequences depend on the item - item data (a file name, a timestamp, a checksum of file data),
///   an item resized with the leaf kept well-formed, an item's type or key changed within the key order, leaf items
///   dropped off the end (a smaller, valid leaf), the root leaf of another tree emptied; the RELOC header flag; a key
///   pointer's key or generation for a child first reached through another (snapshot) tree, or a pointer generation
///   set to 0 ("unknown": the kernel and btrfs check skip the comparison then); the log root set to 0 or to another
///   TREE_LOG block (the log is dropped: the kernel replays nothing, and log blocks have no back-refs); superblock
///   fields the checker need not use (generation, bytes_used, flags, feature flags, dev_item, label, backup roots,
///   log_root_level without a log tree, ...); sys_chunk_array fields the chunk map does not use (objectid, owner,
///   stripe_len of unstriped chunks, io_align, io_width, sector_size, sub_stripes); CHUNK_ITEM fields edited in the
///   chunk tree; zeros over data, free space, stale tree blocks, parity, or only a mirror (copy >= 1) of a live block,
///   which the checker, like btrfs check, reads only when copy 0 is bad. In kind f, a must-detect edit of a block
///   that another edit may have made unreachable (an ancestor's pointers, the root tree's ROOT_ITEMs, the chunk
///   tree, the log root tree) counts as "masked" (may detect); the masking edit is judged on its own.</item>
/// </list></summary>
public enum Expectation { MustBeClean, MayDetect, MustDetect }

/// <summary>One applied mutation: its kind, the operation, what <c>check</c> must answer and why (<see cref="Class"/>,
/// the bucket detection rates are reported in), and a description precise enough to redo it by hand.</summary>
public sealed record Mutation(MutationKind Kind, string Op, Expectation Expect, string Class, string Description)
{
    /// <summary>The tree block the mutation edited, when it edited one (for <c>dump-tree --block</c>).</summary>
    public ulong? Block { get; init; }

    public override string ToString() => $"{Kind}/{Op} [{Expect}: {Class}] {Description}";
}

/// <summary>Makes one mutation of a fixture's working copy from a seed. Deterministic: the same fixture and seed
/// always give the same mutation (the live-block list comes from a deterministic walk of the pristine image).</summary>
public sealed class Fuzzer(FuzzFixture fx, WorkImage work)
{
    private const int HeaderEnd = Header.Size; // 101
    private const int ItemSize = ItemHeader.Size; // 25
    private const int PtrSize = KeyPtr.Size; // 33

    public Mutation Mutate(int seed, MutationKind? only = null)
    {
        var rng = new Random(seed);
        var kind = only ?? (MutationKind)rng.Next(6);
        return kind switch
        {
            MutationKind.RandomBytes => RandomBytes(rng, keepChecksum: false),
            MutationKind.KeepChecksum => RandomBytes(rng, keepChecksum: true),
            MutationKind.Structural => Structural(rng),
            MutationKind.Superblock => SuperblockField(rng),
            MutationKind.Truncate => rng.Next(2) == 0 ? Truncate(rng) : Hole(rng),
            MutationKind.MultiBlock => MultiBlock(rng),
            _ => throw new ArgumentOutOfRangeException(nameof(only)),
        };
    }

    // ------------------------------------------------------------------ (a), (b), (f): random bytes in tree blocks

    private LiveBlock PickBlock(Random rng)
    {
        // Half the time a tree first (so small trees - chunk, dev, root, uuid - get their share), else any block.
        if (rng.Next(2) == 0)
        {
            var tree = fx.BlocksByTree[rng.Next(fx.BlocksByTree.Count)];
            return tree[rng.Next(tree.Count)];
        }
        return fx.Blocks[rng.Next(fx.Blocks.Count)];
    }

    private Mutation RandomBytes(Random rng, bool keepChecksum)
    {
        var b = PickBlock(rng);
        var orig = fx.ReadBlock(b);
        var buf = (byte[])orig.Clone();
        string op = RandomEdit(rng, b, buf, includeChecksumField: keepChecksum);
        if (keepChecksum)
        {
            bool copy0Only = b.Copies.Count > 1 && rng.Next(2) == 0;
            WriteBlock(b, buf, copy0Only ? 1 : b.Copies.Count);
            var (exp, cls) = ClassifyKeptChecksum(orig, buf);
            return new Mutation(MutationKind.KeepChecksum, op.Split(' ')[0], exp, cls,
                $"{b}: {op}; old checksum kept; written to {(copy0Only ? "copy 0 only" : $"all {b.Copies.Count} copies")}") { Block = b.Logical };
        }
        Recompute(buf);
        WriteBlock(b, buf, b.Copies.Count);
        var (e, c) = ClassifyRecomputed(b, orig, buf);
        return new Mutation(MutationKind.RandomBytes, op.Split(' ')[0], e, c, $"{b}: {op}; checksum recomputed; all copies") { Block = b.Logical };
    }

    private Mutation MultiBlock(Random rng)
    {
        int n = rng.Next(2, 6);
        var edits = new Dictionary<ulong, (LiveBlock B, byte[] Orig, byte[] Buf)>();
        var ops = new List<string>();
        for (int i = 0; i < n; i++)
        {
            var b = PickBlock(rng);
            if (!edits.TryGetValue(b.Logical, out var e)) edits[b.Logical] = e = (b, fx.ReadBlock(b), fx.ReadBlock(b));
            ops.Add($"{b.Logical}: {RandomEdit(rng, b, e.Buf, includeChecksumField: false)}");
        }
        var worst = (Exp: Expectation.MustBeClean, Cls: "no-change");
        foreach (var (b, orig, buf) in edits.Values)
        {
            Recompute(buf);
            WriteBlock(b, buf, b.Copies.Count);
            var r = ClassifyRecomputed(b, orig, buf);
            // An edit of a block the checker may no longer reach (another edit changed an ancestor's pointers, the root
            // tree's ROOT_ITEMs or the chunk map) cannot be required to show; the masking edit is judged on its own.
            if (r.Item1 == Expectation.MustDetect && edits.Values.Any(o => o.B != b && MayHide(o.B, b)))
                r = (Expectation.MayDetect, "masked:" + r.Item2);
            if (r.Item1 > worst.Exp || (worst.Cls == "no-change" && r.Item2 != "no-change" && r.Item1 == worst.Exp)) worst = r;
        }
        return new Mutation(MutationKind.MultiBlock, $"x{n}", worst.Exp, worst.Cls,
            $"{n} edits in {edits.Count} block(s) ({string.Join(", ", edits.Values.Select(v => v.B.ToString()))}): {string.Join("; ", ops)}; checksums recomputed; all copies")
        { Block = edits.Keys.First() };
    }

    /// <summary>Can an edit of <paramref name="a"/> make <paramref name="b"/> unreachable for the checker?</summary>
    private bool MayHide(LiveBlock a, LiveBlock b)
    {
        if (a.TreeId == ObjectIds.ChunkTree) return true; // chunk items map every other block
        if (a.TreeId == ObjectIds.TreeLog && b.TreeId == ObjectIds.TreeLog) return true; // the log root tree lists the log trees
        if (a.TreeId == ObjectIds.RootTree && b.TreeId is not (ObjectIds.RootTree or ObjectIds.ChunkTree)) return true; // ROOT_ITEMs
        for (var p = b.Parent is { } pb ? fx.Block(pb) : null; p != null; p = p.Parent is { } pp ? fx.Block(pp) : null)
            if (p.Logical == a.Logical) return true;
        return false;
    }

    /// <summary>One random edit of <paramref name="buf"/> (the bytes of <paramref name="b"/>), biased toward the header,
    /// the item headers / key pointers and the item data. Returns "op details".</summary>
    private string RandomEdit(Random rng, LiveBlock b, byte[] buf, bool includeChecksumField)
    {
        int size = buf.Length;
        int n = b.NrItems;
        int entry = b.IsLeaf ? ItemSize : PtrSize;
        int entriesEnd = HeaderEnd + n * entry;
        int dataStart = size;
        if (b.IsLeaf)
            for (int i = 0; i < n; i++) dataStart = Math.Min(dataStart, HeaderEnd + (int)Math.Min(ReadU32(buf, HeaderEnd + i * ItemSize + 17), (uint)size));
        int[] fieldStarts;
        int lo, hi;
        string region;
        switch (rng.Next(10))
        {
            case < 3:
                region = "header";
                lo = includeChecksumField ? 0 : 32; hi = HeaderEnd;
                fieldStarts = [32, 48, 56, 64, 80, 88, 96, 100];
                break;
            case < 6 when n > 0:
                region = b.IsLeaf ? "item-headers" : "key-ptrs";
                lo = HeaderEnd; hi = entriesEnd;
                int slot = rng.Next(n);
                fieldStarts = (b.IsLeaf ? new[] { 0, 8, 9, 17, 21 } : [0, 8, 9, 17, 25]).Select(f => HeaderEnd + slot * entry + f).ToArray();
                break;
            case < 9 when b.IsLeaf && dataStart < size:
                region = "item-data";
                lo = dataStart; hi = size;
                fieldStarts = [];
                break;
            case < 9 when !b.IsLeaf && entriesEnd < size:
                region = "free-ptr-space";
                lo = entriesEnd; hi = size;
                fieldStarts = [];
                break;
            default:
                region = "anywhere";
                lo = includeChecksumField ? 0 : 32; hi = size;
                fieldStarts = [];
                break;
        }
        int at = fieldStarts.Length > 0 && rng.Next(3) > 0 ? fieldStarts[rng.Next(fieldStarts.Length)] : rng.Next(lo, hi);
        if (region == "item-data" && rng.Next(2) == 0)
        {
            // inside one item, at an offset aligned to 8 from its start half the time: hits the item's own fields
            int slot = rng.Next(n);
            int off = HeaderEnd + (int)ReadU32(buf, HeaderEnd + slot * ItemSize + 17), len = (int)ReadU32(buf, HeaderEnd + slot * ItemSize + 21);
            if (len > 0 && off >= lo && off + len <= size)
            {
                int rel = rng.Next(len);
                if (rng.Next(2) == 0) rel &= ~7;
                at = off + rel;
                region = $"item-data(slot {slot})";
            }
        }
        switch (rng.Next(3))
        {
            case 0:
            {
                int len = Math.Min(rng.Next(1, 17), size - at);
                rng.NextBytes(buf.AsSpan(at, len));
                return $"random-bytes {region} [{at}, +{len})";
            }
            case 1:
            {
                int bit = rng.Next(8);
                buf[at] ^= (byte)(1 << bit);
                return $"bit-flip {region} byte {at} bit {bit}";
            }
            default:
            {
                int width = rng.Next(2) == 0 ? 4 : 8;
                if (at + width > size) at = size - width;
                ulong old = width == 4 ? ReadU32(buf, at) : BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(at));
                ulong v = rng.Next(6) switch
                {
                    0 => 0,
                    1 => ulong.MaxValue,
                    2 => (ulong)rng.Next(1, 300),
                    3 => old + 1,
                    4 => old - 1,
                    _ => (ulong)rng.NextInt64() | (1UL << 40),
                };
                if (width == 4) BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(at), (uint)v);
                else BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(at), v);
                return $"field-set {region} u{width * 8} at {at}: {old} -> {(width == 4 ? (uint)v : v)}";
            }
        }
    }

    // ------------------------------------------------------------------ (c) structural

    private Mutation Structural(Random rng)
    {
        var nodes = fx.Blocks.Where(x => !x.IsLeaf).ToList();
        var b = nodes.Count > 0 && rng.Next(2) == 0 ? nodes[rng.Next(nodes.Count)] : PickBlock(rng);
        var orig = fx.ReadBlock(b);
        var buf = (byte[])orig.Clone();
        int n = b.NrItems;
        int entry = b.IsLeaf ? ItemSize : PtrSize;
        var ops = new List<string> { "nritems-huge", "nritems-zero", "nritems-minus-one", "nritems-plus-one", "level-7", "level-255", "level-plus-one" };
        if (n >= 2) ops.AddRange(["duplicate-entry", "swap-entries"]);
        if (n == 1 && !b.IsLeaf) ops.Add("duplicate-entry");
        if (!b.IsLeaf) ops.AddRange(["ptr-self", "ptr-parent", "ptr-random-aligned", "ptr-other-tree", "ptr-other-tree"]);
        if (b.IsLeaf && n > 0) ops.AddRange(["shrink-item", "shrink-item", "grow-item", "grow-item", "retype-item", "retype-item"]);
        if (b.IsLeaf && SlotsOfType(orig, ItemType.RootItem).Count > 0) ops.AddRange(["root-item", "root-item", "root-item"]);
        if (b.IsLeaf && SlotsOfType(orig, ItemType.ChunkItem).Count > 0) ops.AddRange(["chunk-item", "chunk-item", "chunk-item"]);
        if (b.IsLeaf && SlotsOfType(orig, ItemType.ExtentItem, ItemType.MetadataItem).Count > 0) ops.AddRange(["extent-refs", "extent-refs"]);
        string op = ops[rng.Next(ops.Count)];
        Expectation? forced = null;
        string? forcedClass = null;
        string what;
        int maxEntries = (buf.Length - HeaderEnd) / entry;
        switch (op)
        {
            case "nritems-huge":
            {
                uint v = rng.Next(3) switch { 0 => uint.MaxValue, 1 => (uint)maxEntries + 1, _ => (uint)rng.Next(maxEntries + 1, int.MaxValue) };
                SetU32(buf, Header.NrItemsAt, v);
                what = $"nritems {n} -> {v}";
                break;
            }
            case "nritems-zero": SetU32(buf, Header.NrItemsAt, 0); what = $"nritems {n} -> 0"; break;
            case "nritems-minus-one": SetU32(buf, Header.NrItemsAt, (uint)Math.Max(0, n - 1)); what = $"nritems {n} -> {Math.Max(0, n - 1)}"; break;
            case "nritems-plus-one": SetU32(buf, Header.NrItemsAt, (uint)n + 1); what = $"nritems {n} -> {n + 1}"; break;
            case "level-7": buf[Header.LevelAt] = 7; what = $"level {b.Level} -> 7"; break;
            case "level-255": buf[Header.LevelAt] = 255; what = $"level {b.Level} -> 255"; break;
            case "level-plus-one": buf[Header.LevelAt] = (byte)(b.Level + 1); what = $"level {b.Level} -> {b.Level + 1}"; break;
            case "duplicate-entry" when n == 1:
                Array.Copy(buf, HeaderEnd, buf, HeaderEnd + entry, entry);
                SetU32(buf, Header.NrItemsAt, 2);
                what = "key pointer 0 duplicated into slot 1, nritems 1 -> 2";
                break;
            case "duplicate-entry":
            {
                int i = rng.Next(n - 1);
                Array.Copy(buf, HeaderEnd + i * entry, buf, HeaderEnd + (i + 1) * entry, entry);
                what = $"{(b.IsLeaf ? "item header" : "key pointer")} {i} copied over slot {i + 1}";
                break;
            }
            case "swap-entries":
            {
                int i = rng.Next(n), j = rng.Next(n - 1);
                if (j >= i) j++;
                var tmp = buf.AsSpan(HeaderEnd + i * entry, entry).ToArray();
                Array.Copy(buf, HeaderEnd + j * entry, buf, HeaderEnd + i * entry, entry);
                tmp.CopyTo(buf, HeaderEnd + j * entry);
                what = $"{(b.IsLeaf ? "item headers" : "key pointers")} {i} and {j} swapped";
                break;
            }
            case "shrink-item" or "grow-item":
            {
                int slot = rng.Next(n);
                int size = (int)ReadU32(buf, HeaderEnd + slot * ItemSize + 21);
                int free = FreeSpace(buf, n);
                int delta = op == "shrink-item"
                    ? -Math.Min(size, rng.Next(3) == 0 ? size : rng.Next(1, 9))
                    : Math.Min(free, rng.Next(3) == 0 ? rng.Next(1, 9) : rng.Next(1, 300));
                ResizeItem(buf, n, slot, delta, rng);
                what = $"item {slot} ({KeyAt(orig, slot)}) resized {size} -> {size + delta} bytes (tail {(delta < 0 ? "cut" : "grown with random bytes")}); later items moved, offsets fixed up";
                break;
            }
            case "retype-item":
            {
                int slot = rng.Next(n);
                byte[] types = [1, 12, 13, 24, 48, 54, 60, 72, 84, 96, 108, 128, 132, 144, 156, 168, 169, 176, 178, 182, 184, 192, 198, 204, 216, 228, 248, 249, 250, 251, 252, 253];
                byte t = types[rng.Next(types.Length)];
                byte oldType = buf[HeaderEnd + slot * ItemSize + 8];
                buf[HeaderEnd + slot * ItemSize + 8] = t;
                what = $"item {slot} key type {ItemTypes.Name(oldType)} -> {ItemTypes.Name(t)} ({KeyAt(orig, slot)})";
                forcedClass = $"item-retyped:{TreeGroup(b)}";
                break;
            }
            case "root-item":
            {
                var slots = SlotsOfType(orig, ItemType.RootItem);
                int slot = slots[rng.Next(slots.Count)];
                int d = HeaderEnd + (int)ReadU32(buf, HeaderEnd + slot * ItemSize + 17);
                int len = (int)ReadU32(buf, HeaderEnd + slot * ItemSize + 21);
                const int genAt = 160, bytenrAt = 176, levelAt = 238;
                if (len < levelAt + 1) { what = $"root item {slot} too short to edit"; break; }
                ulong oldBytenr = U64(buf, d + bytenrAt);
                switch (rng.Next(3))
                {
                    case 0:
                        ulong v = rng.Next(2) == 0 ? OtherTreeBlock(rng, b) : RandomAlignedAddress(rng);
                        if (oldBytenr == 0) { what = $"root item {slot} has bytenr 0: unchanged"; break; }
                        BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(d + bytenrAt), v);
                        what = $"ROOT_ITEM {KeyAt(orig, slot)} bytenr {oldBytenr} -> {v}";
                        forcedClass = "root-item:bytenr";
                        break;
                    case 1:
                        byte lv = (byte)(rng.Next(2) == 0 ? buf[d + levelAt] + 1 : rng.Next(256));
                        what = $"ROOT_ITEM {KeyAt(orig, slot)} level {buf[d + levelAt]} -> {lv}";
                        buf[d + levelAt] = lv;
                        forcedClass = "root-item:level";
                        break;
                    default:
                        ulong g = U64(buf, d + genAt);
                        ulong ng = rng.Next(2) == 0 ? g + 1 : g - 1;
                        BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(d + genAt), ng);
                        if (len >= 247) BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(d + 239), ng); // generation_v2 follows it
                        what = $"ROOT_ITEM {KeyAt(orig, slot)} generation {g} -> {ng}";
                        forcedClass = "root-item:generation";
                        break;
                }
                // the tree this item roots is walked from the new values: its old root is unreferenced (leaked),
                // or the block found there has the wrong level / generation / owner. Bytenr 0 items are not walked.
                if (forcedClass != null && oldBytenr != 0) forced = Expectation.MustDetect;
                break;
            }
            case "chunk-item":
            {
                var slots = SlotsOfType(orig, ItemType.ChunkItem);
                int slot = slots[rng.Next(slots.Count)];
                int d = HeaderEnd + (int)ReadU32(buf, HeaderEnd + slot * ItemSize + 17);
                int len = (int)ReadU32(buf, HeaderEnd + slot * ItemSize + 21);
                string f;
                switch (rng.Next(5))
                {
                    case 0:
                    {
                        // another profile (keeping the DATA/SYSTEM/METADATA bits)
                        ulong type = U64(buf, d + 24);
                        ulong[] profiles = [0, 1UL << 3, 1UL << 4, 1UL << 5, 1UL << 6, 1UL << 7, 1UL << 8, 1UL << 9, 1UL << 10, (1UL << 3) | (1UL << 4)];
                        ulong nt = (type & 7) | profiles[rng.Next(profiles.Length)];
                        BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(d + 24), nt);
                        f = $"type 0x{type:x} -> 0x{nt:x}";
                        break;
                    }
                    case 1:
                    {
                        ushort ns = BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(d + 44));
                        ushort v = (ushort)(rng.Next(2) == 0 ? Math.Max(0, ns - 1) : rng.Next(0, 8));
                        BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(d + 44), v);
                        f = $"num_stripes {ns} -> {v}";
                        break;
                    }
                    case 2:
                    {
                        ulong sl = U64(buf, d + 16);
                        ulong v = rng.Next(3) switch { 0 => 0, 1 => 1, _ => (ulong)rng.NextInt64() };
                        BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(d + 16), v);
                        f = $"stripe_len {sl} -> {v}";
                        break;
                    }
                    case 3:
                    {
                        ushort ss = BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(d + 46));
                        ushort v = (ushort)rng.Next(0, 5);
                        BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(d + 46), v);
                        f = $"sub_stripes {ss} -> {v}";
                        break;
                    }
                    default:
                    {
                        int stripes = Math.Max(1, (len - 48) / 32);
                        int si = rng.Next(stripes);
                        bool devid = rng.Next(2) == 0;
                        int at = d + 48 + si * 32 + (devid ? 0 : 8);
                        ulong old = U64(buf, at);
                        ulong v = devid ? (ulong)rng.Next(0, 4) : rng.Next(2) == 0 ? old + (ulong)fx.NodeSize : (ulong)rng.NextInt64();
                        if (at + 8 <= d + len) BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(at), v);
                        f = $"stripe {si} {(devid ? "devid" : "offset")} {old} -> {v}";
                        break;
                    }
                }
                what = $"CHUNK_ITEM {KeyAt(orig, slot)} {f}";
                forcedClass = "chunk-item:" + f.Split(' ')[0];
                break;
            }
            case "extent-refs":
            {
                var slots = SlotsOfType(orig, ItemType.ExtentItem, ItemType.MetadataItem);
                int slot = slots[rng.Next(slots.Count)];
                int d = HeaderEnd + (int)ReadU32(buf, HeaderEnd + slot * ItemSize + 17);
                ulong refs = U64(buf, d);
                ulong v = rng.Next(3) switch { 0 => refs + 1, 1 => refs - 1, _ => (ulong)rng.NextInt64() };
                BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(d), v);
                what = $"{ItemTypes.Name(buf[HeaderEnd + slot * ItemSize + 8])} {KeyAt(orig, slot)} refs {refs} -> {v}";
                forced = Expectation.MustDetect; // refs must equal the sum of its back-refs' counts
                forcedClass = "extent-item:refs";
                break;
            }
            default:
            {
                int slot = rng.Next(n);
                int at = HeaderEnd + slot * PtrSize + 17;
                ulong old = BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(at));
                ulong target = op switch
                {
                    "ptr-self" => b.Logical,
                    "ptr-parent" => b.Parent ?? b.Logical,
                    "ptr-random-aligned" => RandomAlignedAddress(rng),
                    _ => OtherTreeBlock(rng, b),
                };
                BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(at), target);
                what = $"pointer {slot}: block {old} -> {target}{(op == "ptr-parent" && b.Parent == null ? " (root node: itself)" : "")}";
                break;
            }
        }
        Recompute(buf);
        WriteBlock(b, buf, b.Copies.Count);
        var (e, c) = ClassifyRecomputed(b, orig, buf);
        if (forcedClass != null && e != Expectation.MustBeClean)
        {
            // a targeted item edit: its own rule when the generic one (item data: may detect) is weaker
            if (forced is { } fe && fe > e) e = fe;
            if (e != Expectation.MustDetect || forced != null) c = forcedClass;
        }
        return new Mutation(MutationKind.Structural, op, e, c, $"{b}: {what}; checksum recomputed; all copies") { Block = b.Logical };
    }

    private static List<int> SlotsOfType(byte[] block, params ItemType[] types)
    {
        var slots = new List<int>();
        int n = (int)Math.Min(ReadU32(block, Header.NrItemsAt), (uint)((block.Length - HeaderEnd) / ItemSize));
        if (block[Header.LevelAt] != 0) return slots;
        for (int i = 0; i < n; i++)
            if (types.Contains((ItemType)block[HeaderEnd + i * ItemSize + 8])) slots.Add(i);
        return slots;
    }

    private static string KeyAt(byte[] block, int slot) => BtrfsKey.Read(block.AsSpan(HeaderEnd + slot * ItemSize)).ToString();

    /// <summary>Bytes between the end of the item headers and the lowest item data.</summary>
    private static int FreeSpace(byte[] block, int n)
    {
        int low = block.Length;
        for (int i = 0; i < n; i++) low = Math.Min(low, HeaderEnd + (int)ReadU32(block, HeaderEnd + i * ItemSize + 17));
        return Math.Max(0, low - (HeaderEnd + n * ItemSize));
    }

    /// <summary>Changes item <paramref name="slot"/>'s size by <paramref name="delta"/> at its tail, moving the data of
    /// the items after it (lower in the block) and fixing their offsets, so the leaf stays well-formed: what the item
    /// decoders and cross-checks see is a short or long item.</summary>
    private static void ResizeItem(byte[] block, int n, int slot, int delta, Random rng)
    {
        if (delta == 0) return;
        int low = block.Length;
        for (int i = 0; i < n; i++) low = Math.Min(low, HeaderEnd + (int)ReadU32(block, HeaderEnd + i * ItemSize + 17));
        int hAt = HeaderEnd + slot * ItemSize;
        int start = HeaderEnd + (int)ReadU32(block, hAt + 17), size = (int)ReadU32(block, hAt + 21);
        int tail = start + size; // the item keeps [start, start + size + delta) after moving by -delta
        // region [low, tail) moves to [low - delta, tail - delta); item data of slot grows/shrinks at its end
        var region = block.AsSpan(low, tail - low).ToArray();
        if (delta > 0)
        {
            region.CopyTo(block, low - delta);
            rng.NextBytes(block.AsSpan(tail - delta, delta));
        }
        else
        {
            // shrink: keep the first size + delta bytes of the item; everything below moves up by -delta
            int keep = tail - low + delta; // bytes of [low, start + size + delta)
            block.AsSpan(low - delta, tail - (low - delta)).Clear();
            region.AsSpan(0, keep).CopyTo(block.AsSpan(low - delta));
            block.AsSpan(low, -delta).Clear();
        }
        for (int i = slot; i < n; i++)
        {
            int at = HeaderEnd + i * ItemSize + 17;
            SetU32(block, at, (uint)(ReadU32(block, at) - delta));
        }
        SetU32(block, hAt + 21, (uint)(size + delta));
    }

    private ulong RandomAlignedAddress(Random rng)
    {
        var chunks = fx.Volume.Chunks.Chunks;
        if (rng.Next(3) > 0 && chunks.Count > 0)
        {
            // inside a chunk: more likely to read something (a data block, a free block, a stale tree block)
            var c = chunks[rng.Next(chunks.Count)];
            ulong blocks = Math.Max(1, c.Length / (ulong)fx.NodeSize);
            return c.Logical + (ulong)rng.NextInt64((long)blocks) * (ulong)fx.NodeSize;
        }
        return (ulong)rng.NextInt64(1, long.MaxValue / fx.NodeSize) * (ulong)fx.SectorSize;
    }

    private ulong OtherTreeBlock(Random rng, LiveBlock b)
    {
        // Prefer a block of the right level (level - 1) of another tree: it passes the level check and must be
        // caught by owner, first key, generation or reference counting.
        var others = fx.Blocks.Where(x => x.TreeId != b.TreeId && x.Level == b.Level - 1).ToList();
        if (others.Count == 0) others = fx.Blocks.Where(x => x.TreeId != b.TreeId).ToList();
        if (others.Count == 0) return RandomAlignedAddress(rng);
        return others[rng.Next(others.Count)].Logical;
    }

    // ------------------------------------------------------------------ (d) superblock

    private static readonly string[] SuperFields =
    [
        "root", "chunk_root", "log_root", "root_level", "chunk_root_level", "log_root_level", "sys_chunk_array",
        "sys_chunk_array", "sys_chunk_array_size", "nodesize", "sectorsize", "num_devices", "csum_type",
        "random-bytes", "random-bytes", "flag-bit", "root-and-backups",
    ];

    /// <summary>Superblock fields by offset: name, size, and whether the checker must notice a change.</summary>
    private static readonly (string Name, int At, int Size, bool Must)[] SuperLayout =
    [
        ("fsid", Superblock.FsidAt, 16, true), // every tree block header carries it (unless METADATA_UUID)
        ("bytenr", Superblock.BytenrAt, 8, true), // each copy must state its own offset
        ("flags", Superblock.FlagsAt, 8, false),
        ("magic", Superblock.MagicAt, 8, true),
        ("generation", Superblock.GenerationAt, 8, false),
        ("root", Superblock.RootAt, 8, true),
        ("chunk_root", Superblock.ChunkRootAt, 8, true),
        ("log_root", Superblock.LogRootAt, 8, true),
        ("log_root_transid", Superblock.LogRootTransidAt, 8, false),
        ("total_bytes", Superblock.TotalBytesAt, 8, false),
        ("bytes_used", Superblock.BytesUsedAt, 8, false),
        ("root_dir_objectid", Superblock.RootDirObjectIdAt, 8, false),
        ("num_devices", Superblock.NumDevicesAt, 8, true),
        ("sectorsize", Superblock.SectorSizeAt, 4, true),
        ("nodesize", Superblock.NodeSizeAt, 4, true),
        ("leafsize", Superblock.LeafSizeAt, 4, false),
        ("stripesize", Superblock.StripeSizeAt, 4, false),
        ("sys_chunk_array_size", Superblock.SysChunkArraySizeAt, 4, true),
        ("chunk_root_generation", Superblock.ChunkRootGenerationAt, 8, false),
        ("compat_flags", Superblock.CompatFlagsAt, 8, false),
        ("compat_ro_flags", Superblock.CompatRoFlagsAt, 8, false),
        ("incompat_flags", Superblock.IncompatFlagsAt, 8, false),
        ("csum_type", Superblock.CsumTypeAt, 2, true),
        ("root_level", Superblock.RootLevelAt, 1, true),
        ("chunk_root_level", Superblock.ChunkRootLevelAt, 1, true),
        ("log_root_level", Superblock.LogRootLevelAt, 1, true), // see ClassifySuper: only with a log tree or >= 8
        ("dev_item", Superblock.DevItemAt, DevItem.Size, false),
        ("label", Superblock.LabelAt, Superblock.LabelSize, false),
        ("cache_generation", Superblock.CacheGenerationAt, 8, false),
        ("uuid_tree_generation", Superblock.UuidTreeGenerationAt, 8, false),
        ("metadata_uuid", Superblock.MetadataUuidAt, 16, false),
        ("nr_global_roots", Superblock.NrGlobalRootsAt, 8, false),
        ("reserved", Superblock.ReservedAt, Superblock.SysChunkArrayAt - Superblock.ReservedAt, false),
        ("sys_chunk_array", Superblock.SysChunkArrayAt, Superblock.SysChunkArrayMax, true), // see ClassifySysArray
        ("backup_roots", Superblock.SuperRootsAt, Superblock.PaddingAt - Superblock.SuperRootsAt, false),
        ("padding", Superblock.PaddingAt, Superblock.Size - Superblock.PaddingAt, false), // unused: see ClassifySuper
    ];

    private Mutation SuperblockField(Random rng)
    {
        var orig = fx.Super;
        var sb = (byte[])orig.Clone();
        string field = SuperFields[rng.Next(SuperFields.Length)];
        string what;
        switch (field)
        {
            case "root" or "chunk_root" or "log_root":
            {
                int at = field switch { "root" => Superblock.RootAt, "chunk_root" => Superblock.ChunkRootAt, _ => Superblock.LogRootAt };
                ulong old = U64(sb, at);
                ulong v = rng.Next(5) switch
                {
                    0 => 0,
                    1 => fx.Blocks[rng.Next(fx.Blocks.Count)].Logical,
                    2 => old + (ulong)fx.NodeSize,
                    3 => RandomAlignedAddress(rng),
                    _ => (ulong)rng.NextInt64(),
                };
                BinaryPrimitives.WriteUInt64LittleEndian(sb.AsSpan(at), v);
                what = $"{field} {old} -> {v}";
                break;
            }
            case "root_level" or "chunk_root_level" or "log_root_level":
            {
                int at = field switch { "root_level" => Superblock.RootLevelAt, "chunk_root_level" => Superblock.ChunkRootLevelAt, _ => Superblock.LogRootLevelAt };
                byte old = sb[at];
                byte v = rng.Next(3) switch { 0 => (byte)(old + 1), 1 => (byte)(old - 1), _ => (byte)rng.Next(256) };
                sb[at] = v;
                what = $"{field} {old} -> {v}";
                break;
            }
            case "sys_chunk_array":
            {
                int size = (int)Math.Min(ReadU32(sb, Superblock.SysChunkArraySizeAt), Superblock.SysChunkArrayMax);
                int at = Superblock.SysChunkArrayAt + rng.Next(Math.Max(1, size));
                var op = rng.Next(3);
                int len = op == 0 ? Math.Min(rng.Next(1, 9), Superblock.SysChunkArrayAt + size - at) : 1;
                if (op == 0) rng.NextBytes(sb.AsSpan(at, len));
                else if (op == 1) sb[at] ^= (byte)(1 << rng.Next(8));
                else sb[at] = (byte)rng.Next(256);
                what = $"sys_chunk_array bytes [{at - Superblock.SysChunkArrayAt}, +{len}) {(op == 0 ? "randomized" : op == 1 ? "bit-flipped" : "set")}";
                break;
            }
            case "sys_chunk_array_size":
            {
                uint old = ReadU32(sb, Superblock.SysChunkArraySizeAt);
                uint v = rng.Next(4) switch { 0 => 0, 1 => old + (uint)rng.Next(1, 200), 2 => old - (uint)rng.Next(1, (int)Math.Max(2, old)), _ => (uint)rng.Next() };
                SetU32(sb, Superblock.SysChunkArraySizeAt, v);
                what = $"sys_chunk_array_size {old} -> {v}";
                break;
            }
            case "nodesize" or "sectorsize":
            {
                int at = field == "nodesize" ? Superblock.NodeSizeAt : Superblock.SectorSizeAt;
                uint old = ReadU32(sb, at);
                uint v = rng.Next(4) switch { 0 => 0, 1 => 1u << rng.Next(9, 18), 2 => old * 2, _ => (uint)rng.Next() };
                SetU32(sb, at, v);
                what = $"{field} {old} -> {v}";
                break;
            }
            case "num_devices":
            {
                ulong old = U64(sb, Superblock.NumDevicesAt);
                ulong v = rng.Next(4) switch { 0 => 0, 1 => old + 1, 2 => old - 1, _ => (ulong)rng.NextInt64() };
                BinaryPrimitives.WriteUInt64LittleEndian(sb.AsSpan(Superblock.NumDevicesAt), v);
                what = $"num_devices {old} -> {v}";
                break;
            }
            case "csum_type":
            {
                ushort old = BinaryPrimitives.ReadUInt16LittleEndian(sb.AsSpan(Superblock.CsumTypeAt));
                ushort v = rng.Next(2) == 0 ? (ushort)((old + rng.Next(1, 4)) % 4) : (ushort)rng.Next(4, 65536);
                BinaryPrimitives.WriteUInt16LittleEndian(sb.AsSpan(Superblock.CsumTypeAt), v);
                what = $"csum_type {old} -> {v}";
                break;
            }
            case "root-and-backups":
            {
                // the root tree (or chunk tree) unreadable, and the backup roots the fallback tries damaged too
                bool chunk = rng.Next(2) == 0;
                int at = chunk ? Superblock.ChunkRootAt : Superblock.RootAt;
                ulong old = U64(sb, at);
                BinaryPrimitives.WriteUInt64LittleEndian(sb.AsSpan(at), RandomAlignedAddress(rng));
                var edits = new List<string>();
                for (int i = 0; i < Superblock.BackupRootCount; i++)
                {
                    int b0 = Superblock.SuperRootsAt + i * BackupRoot.Size;
                    int f = rng.Next(7);
                    int off = f switch { 0 => 0, 1 => 8, 2 => 16, 3 => 24, 4 => 152, 5 => 153, _ => rng.Next(BackupRoot.Size) };
                    if (off is 152 or 153 || f == 6) sb[b0 + off] = (byte)rng.Next(256);
                    else BinaryPrimitives.WriteUInt64LittleEndian(sb.AsSpan(b0 + off),
                        rng.Next(3) switch { 0 => 0, 1 => fx.Blocks[rng.Next(fx.Blocks.Count)].Logical, _ => RandomAlignedAddress(rng) });
                    edits.Add($"backup {i} byte {off}");
                }
                what = $"{(chunk ? "chunk_root" : "root")} {old} -> {U64(sb, at)}; {string.Join(", ", edits)} changed";
                break;
            }
            case "flag-bit":
            {
                int at = rng.Next(3) switch { 0 => Superblock.FlagsAt, 1 => Superblock.CompatRoFlagsAt, _ => Superblock.IncompatFlagsAt };
                int bit = rng.Next(2) == 0 ? rng.Next(17) : rng.Next(64);
                sb[at + bit / 8] ^= (byte)(1 << (bit % 8));
                what = $"{SuperLayout.First(f => f.At == at).Name} bit {bit} flipped";
                break;
            }
            default:
            {
                int at = rng.Next(32, Superblock.Size);
                int len = Math.Min(rng.Next(1, 9), Superblock.Size - at);
                rng.NextBytes(sb.AsSpan(at, len));
                var names = SuperLayout.Where(f => f.At < at + len && at < f.At + f.Size).Select(f => f.Name);
                what = $"bytes [{at}, +{len}) randomized ({string.Join(", ", names)})";
                break;
            }
        }
        var (exp, cls) = ClassifySuper(orig, sb);
        // Apply the same field edit to every copy of every device (each keeps its own dev_item and bytenr).
        int copies = WriteSuperblocks(orig, sb);
        return new Mutation(MutationKind.Superblock, field, exp, cls, $"superblock {what}; checksum recomputed; {copies} copies");
    }

    /// <summary>What a superblock edit changed (see <see cref="SuperLayout"/> and <see cref="ClassifySysArray"/>).</summary>
    private (Expectation, string) ClassifySuper(byte[] orig, byte[] sb)
    {
        var worst = (Exp: Expectation.MustBeClean, Cls: "no-change");
        void Note(Expectation e, string cls) { if (e > worst.Exp || (worst.Cls == "no-change" && e == worst.Exp)) worst = (e, cls); }
        foreach (var (name, at, size, must) in SuperLayout)
        {
            if (orig.AsSpan(at, size).SequenceEqual(sb.AsSpan(at, size))) continue;
            if (name == "sys_chunk_array")
            {
                var r = ClassifySysArray(orig, sb);
                if (r.Item2 != "no-change") Note(r.Item1, r.Item2);
                else Note(Expectation.MustBeClean, "super:sys_chunk_array-past-size");
                continue;
            }
            if (name == "log_root_level" && U64(sb, Superblock.LogRootAt) == 0 && sb[at] < Header.MaxLevel)
            {
                Note(Expectation.MayDetect, "super:log_root_level-without-log-tree");
                continue;
            }
            if (name == "log_root" && U64(sb, at) == 0)
            {
                // Dropping the log tree loses the fsync'd changes it held, but what remains is a consistent filesystem
                // (log tree blocks have no extent items): nothing is left to notice.
                Note(Expectation.MayDetect, "super:log_root-dropped");
                continue;
            }
            if (name == "log_root" && fx.Block(U64(sb, at)) is { TreeId: ObjectIds.TreeLog })
            {
                // Another TREE_LOG block as the log root tree: the kernel's replay looks for ROOT_ITEMs in it, finds
                // none and replays nothing - the same as a dropped log, unless the checker knows which item types
                // a log root tree may hold.
                Note(Expectation.MayDetect, "super:log_root-other-log-block");
                continue;
            }
            if (name == "padding")
            {
                Note(Expectation.MustBeClean, "super:padding");
                continue;
            }
            if (name == "backup_roots")
            {
                Note(Expectation.MayDetect, "super:backup_roots");
                continue;
            }
            Note(must ? Expectation.MustDetect : Expectation.MayDetect, "super:" + name);
        }
        return worst;
    }

    /// <summary>Applies the bytes that differ between <paramref name="orig"/> and <paramref name="mutated"/> to every
    /// superblock copy of every device and recomputes each copy's checksum (with the new csum_type when it is known).</summary>
    private int WriteSuperblocks(byte[] orig, byte[] mutated)
    {
        int written = 0;
        var buf = new byte[Superblock.Size];
        for (int d = 0; d < fx.Devices.Count; d++)
        {
            foreach (long off in Superblock.MirrorOffsets)
            {
                if (off + Superblock.Size > work.Length(d)) break;
                work.Read(d, off, buf);
                if (U64(buf, Superblock.MagicAt) != Superblock.MagicValue) continue;
                for (int i = 32; i < Superblock.Size; i++) if (orig[i] != mutated[i]) buf[i] = mutated[i];
                ushort type = BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(Superblock.CsumTypeAt));
                var csumType = Checksum.IsKnown(type) ? (ChecksumType)type : fx.CsumType;
                Checksum.Compute(csumType, buf.AsSpan(32), buf.AsSpan(0, 32));
                work.Write(d, off, buf);
                written++;
            }
        }
        return written;
    }

    /// <summary>Which sys_chunk_array fields changed: those the chunk map is built from must be detected (the chunk
    /// tree's copy of a SYSTEM chunk is compared with it, and the map decides where every tree block is read).</summary>
    private static (Expectation, string) ClassifySysArray(byte[] orig, byte[] mutated)
    {
        int size = (int)Math.Min(ReadU32(orig, Superblock.SysChunkArraySizeAt), Superblock.SysChunkArrayMax);
        var arr = orig.AsSpan(Superblock.SysChunkArrayAt, size);
        var worst = (Expectation.MustBeClean, "no-change");
        int pos = 0;
        while (pos + BtrfsKey.Size + ChunkItem.HeaderSize <= size)
        {
            int stripes = BinaryPrimitives.ReadUInt16LittleEndian(arr[(pos + BtrfsKey.Size + 44)..]);
            int end = Math.Min(size, pos + BtrfsKey.Size + ChunkItem.HeaderSize + stripes * ChunkItem.StripeSize);
            for (int i = pos; i < end; i++)
            {
                if (orig[Superblock.SysChunkArrayAt + i] == mutated[Superblock.SysChunkArrayAt + i]) continue;
                int rel = i - pos;
                string f = rel switch
                {
                    < 8 => "key-objectid",
                    < 9 => "key-type",
                    < 17 => "key-offset",
                    < 25 => "length",
                    < 33 => "owner",
                    < 41 => "stripe_len",
                    < 49 => "type",
                    < 53 => "io_align",
                    < 57 => "io_width",
                    < 61 => "sector_size",
                    < 63 => "num_stripes",
                    < 65 => "sub_stripes",
                    _ => "stripe",
                };
                bool used = f is "key-type" or "key-offset" or "length" or "type" or "num_stripes" or "stripe";
                var r = used ? (Expectation.MustDetect, "super:sys_chunk_array-" + f) : (Expectation.MayDetect, "super:sys_chunk_array-unused-" + f);
                if (r.Item1 > worst.Item1) worst = r;
            }
            pos = end;
        }
        // bytes past the last whole entry (cannot happen in a valid array; counted as used)
        for (int i = pos; i < size; i++)
            if (orig[Superblock.SysChunkArrayAt + i] != mutated[Superblock.SysChunkArrayAt + i])
                worst = (Expectation.MustDetect, "super:sys_chunk_array-trailing");
        return worst;
    }

    // ------------------------------------------------------------------ (e) truncation and holes

    private Mutation Truncate(Random rng)
    {
        int d = rng.Next(fx.Devices.Count);
        long len = work.Length(d);
        long cut;
        string how;
        switch (rng.Next(3))
        {
            case 0: cut = rng.NextInt64(len); how = "random offset"; break;
            case 1: cut = rng.NextInt64(len / 4096) * 4096; how = "4 KiB aligned"; break;
            default:
            {
                var b = fx.Blocks[rng.Next(fx.Blocks.Count)];
                var piece = b.Copies[rng.Next(b.Copies.Count)][0];
                d = piece.Device;
                len = work.Length(d);
                cut = piece.Physical + (rng.Next(2) == 0 ? rng.Next(piece.Length) : rng.Next(piece.Length / 4096 + 1) * 4096L);
                how = $"inside a copy of {b}";
                break;
            }
        }
        cut = Math.Clamp(cut, 0, len);
        work.Truncate(d, cut);
        ulong declared = fx.Devices[d].TotalBytes;
        var (exp, cls) = cut == len ? (Expectation.MustBeClean, "no-change")
            : (ulong)cut < declared ? (Expectation.MustDetect, "truncate:below-device-size")
            : (Expectation.MustBeClean, "truncate:past-device-size");
        return new Mutation(MutationKind.Truncate, "truncate", exp, cls,
            $"device {d} ({Path.GetFileName(fx.Devices[d].Path)}) cut from {len} to {cut} bytes ({how}); dev_item total_bytes {declared}");
    }

    private Mutation Hole(Random rng)
    {
        int d = rng.Next(fx.Devices.Count);
        long len = work.Length(d);
        long start;
        string how;
        if (rng.Next(2) == 0)
        {
            var b = fx.Blocks[rng.Next(fx.Blocks.Count)];
            var copy = b.Copies[rng.Next(b.Copies.Count)];
            var piece = copy[rng.Next(copy.Count)];
            d = piece.Device;
            len = work.Length(d);
            start = piece.Physical + rng.Next(piece.Length);
            how = $"starting inside a copy of {b}";
        }
        else
        {
            start = 0;
            how = "random start";
        }
        int size = rng.Next(4) switch
        {
            0 => rng.Next(1, 513),
            1 => 4096,
            2 => fx.NodeSize,
            _ => rng.Next(1, 1 << 20),
        };
        byte[] old;
        for (int attempt = 0; ; attempt++)
        {
            if (how == "random start")
            {
                // most of a sparse image is zeros: try a few starts for a range that holds something
                start = rng.NextInt64(len);
                if (rng.Next(2) == 0) start &= ~4095L;
            }
            int n = (int)Math.Min(size, len - start);
            old = new byte[n];
            work.Read(d, start, old);
            if (how != "random start" || attempt == 7 || old.AsSpan().IndexOfAnyExcept((byte)0) >= 0) break;
        }
        size = old.Length;
        var (exp, cls) = ClassifyHole(d, start, old);
        work.Write(d, start, new byte[size]);
        return new Mutation(MutationKind.Truncate, "zero-range", exp, cls,
            $"device {d} ({Path.GetFileName(fx.Devices[d].Path)}) bytes [{start}, {start + size}) set to zero ({how})");
    }

    private (Expectation, string) ClassifyHole(int dev, long start, byte[] old)
    {
        if (old.AsSpan().IndexOfAnyExcept((byte)0) < 0) return (Expectation.MustBeClean, "no-change");
        long end = start + old.Length;
        bool Changed(long a, long b)
        {
            a = Math.Max(a, start); b = Math.Min(b, end);
            return a < b && old.AsSpan((int)(a - start), (int)(b - a)).IndexOfAnyExcept((byte)0) >= 0;
        }
        foreach (long off in Superblock.MirrorOffsets)
            if ((ulong)off + Superblock.Size <= fx.Devices[dev].TotalBytes && Changed(off, off + Superblock.Size))
                return (Expectation.MustDetect, "zero-range:superblock");
        bool mirror = false;
        foreach (var b in fx.Blocks)
            for (int c = 0; c < b.Copies.Count; c++)
                foreach (var p in b.Copies[c])
                    if (p.Device == dev && Changed(p.Physical, p.Physical + p.Length))
                    {
                        if (c == 0) return (Expectation.MustDetect, "zero-range:live-block-copy0");
                        mirror = true;
                    }
        return mirror ? (Expectation.MayDetect, "zero-range:live-block-mirror-only") : (Expectation.MayDetect, "zero-range:other");
    }

    // ------------------------------------------------------------------ classification of block edits

    private (Expectation, string) ClassifyKeptChecksum(byte[] orig, byte[] buf)
    {
        int n = Checksum.Length(fx.CsumType);
        bool verified = !orig.AsSpan(0, n).SequenceEqual(buf.AsSpan(0, n)) || !orig.AsSpan(32).SequenceEqual(buf.AsSpan(32));
        if (verified) return (Expectation.MustDetect, "checksum-mismatch");
        return orig.AsSpan().SequenceEqual(buf) ? (Expectation.MustBeClean, "no-change") : (Expectation.MustBeClean, "csum-padding");
    }

    /// <summary>Classifies an edit whose checksum was recomputed by what it changed (see <see cref="Expectation"/>).</summary>
    private (Expectation, string) ClassifyRecomputed(LiveBlock b, byte[] orig, byte[] buf)
    {
        var worst = (Exp: Expectation.MustBeClean, Cls: "no-change");
        void Note(Expectation e, string cls) { if (e > worst.Exp || (worst.Cls == "no-change" && e == worst.Exp)) worst = (e, cls); }
        bool Diff(int at, int len) => !orig.AsSpan(at, len).SequenceEqual(buf.AsSpan(at, len));

        if (Diff(Header.FsidAt, 16)) Note(Expectation.MustDetect, "header:fsid");
        if (Diff(Header.BytenrAt, 8)) Note(Expectation.MustDetect, "header:bytenr");
        ulong of = U64(orig, Header.FlagsAt), nf = U64(buf, Header.FlagsAt);
        if (((of ^ nf) & ~Header.FlagReloc) != 0) Note(Expectation.MustDetect, "header:flags");
        else if (of != nf) Note(Expectation.MayDetect, "header:reloc-flag");
        if (Diff(Header.ChunkTreeUuidAt, 16)) Note(Expectation.MustDetect, "header:chunk-tree-uuid");
        if (Diff(Header.GenerationAt, 8)) Note(Expectation.MustDetect, "header:generation");
        if (Diff(Header.OwnerAt, 8))
        {
            // A FULL_BACKREF block's owner may name any subvolume, even a deleted one: only a non-subvolume owner is detectable.
            bool free = fx.FullBackref.Contains(b.Logical) && ObjectIds.IsFsTree(U64(buf, Header.OwnerAt)) && ObjectIds.IsFsTree(U64(orig, Header.OwnerAt));
            Note(free ? Expectation.MayDetect : Expectation.MustDetect, free ? "header:owner-of-full-backref" : "header:owner");
        }
        if (Diff(Header.LevelAt, 1)) Note(Expectation.MustDetect, "header:level");
        int oldN = b.NrItems;
        uint newNRaw = ReadU32(buf, Header.NrItemsAt);
        int entry = b.IsLeaf ? ItemSize : PtrSize;
        int maxEntries = (buf.Length - HeaderEnd) / entry;
        int newN = (int)Math.Min(newNRaw, (uint)maxEntries);
        if (newNRaw != (uint)oldN)
        {
            if (!b.IsLeaf || newNRaw > (uint)oldN) Note(Expectation.MustDetect, b.IsLeaf ? "header:nritems-raised" : "header:nritems-node");
            else if (newNRaw == 0 && b.Parent != null) Note(Expectation.MustDetect, "header:nritems-empty-leaf-below-node");
            else if (newNRaw == 0 && b.TreeId is ObjectIds.RootTree or ObjectIds.ExtentTree or ObjectIds.ChunkTree or ObjectIds.DevTree)
                // an empty root tree loses the extent, dev and fs trees; an empty extent / chunk / dev tree loses every
                // extent item / chunk / dev extent: a filesystem nothing can mount or check
                Note(Expectation.MustDetect, $"header:nritems-root-leaf-emptied:{TreeGroup(b)}");
            else Note(Expectation.MayDetect, newNRaw == 0 ? "header:nritems-root-leaf-emptied" : "header:nritems-leaf-items-dropped");
        }
        // If the level changed, the block is read as the other kind: already a MustDetect; stop here.
        if (worst.Exp == Expectation.MustDetect && (Diff(Header.LevelAt, 1) || newNRaw > (uint)oldN)) return worst;

        int n = Math.Min(oldN, newN);
        if (b.IsLeaf)
        {
            bool tiled = Tiled(buf, newN);
            var keys = new BtrfsKey[n];
            for (int i = 0; i < n; i++) keys[i] = BtrfsKey.Read(buf.AsSpan(HeaderEnd + i * ItemSize));
            for (int i = 0; i < n; i++)
            {
                int at = HeaderEnd + i * ItemSize;
                // Offsets and sizes are checked completely: the items must tile the data area. An edit that keeps
                // them tiled (an item resized with the others moved) is a valid leaf with a short or long item.
                if (Diff(at + 17, 8))
                {
                    if (tiled) Note(Expectation.MayDetect, $"item-resized:{TreeGroup(b)}:{ItemTypes.Name(buf[at + 8])}");
                    else Note(Expectation.MustDetect, "item-header:offset-size");
                }
                if (!Diff(at, BtrfsKey.Size)) continue;
                bool orderBroken = (i > 0 && keys[i - 1] >= keys[i]) || (i + 1 < n && keys[i] >= keys[i + 1]);
                bool firstKey = i == 0 && b.Parent != null;
                bool pastEnd = i == n - 1 && b.EndKey is { } ek && keys[i] >= ek;
                if (orderBroken || firstKey || pastEnd) Note(Expectation.MustDetect, "item-header:key-" + (orderBroken ? "order" : firstKey ? "first" : "past-end"));
                else Note(Expectation.MayDetect, $"item-key-in-order:{TreeGroup(b)}");
            }
            // data of the items that remain, then free space
            var inItem = new bool[buf.Length];
            for (int i = 0; i < oldN; i++)
            {
                int at = HeaderEnd + i * ItemSize;
                long off = ReadU32(orig, at + 17), size = ReadU32(orig, at + 21);
                long s = HeaderEnd + off, e = Math.Min(buf.Length, s + size);
                for (long x = s; x < e; x++) inItem[x] = true;
                if (i < n && Diff((int)Math.Min(s, buf.Length), (int)Math.Max(0, e - Math.Min(s, buf.Length))))
                    Note(Expectation.MayDetect, $"item-data:{TreeGroup(b)}:{ItemTypes.Name(BtrfsKey.Read(orig.AsSpan(at)).Type)}");
            }
            for (int x = HeaderEnd + n * ItemSize; x < buf.Length; x++)
                if (!inItem[x] && orig[x] != buf[x]) { Note(Expectation.MustBeClean, "free-space"); break; }
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                int at = HeaderEnd + i * PtrSize;
                ulong child = U64(orig, at + 17);
                bool firstParent = fx.Block(child)?.Parent == b.Logical;
                if (Diff(at + 17, 8)) Note(Expectation.MustDetect, "key-ptr:blockptr");
                bool keyDiff = Diff(at, BtrfsKey.Size), genDiff = Diff(at + 25, 8);
                if (!keyDiff && !genDiff) continue;
                var k = BtrfsKey.Read(buf.AsSpan(at));
                bool orderBroken = (i > 0 && BtrfsKey.Read(buf.AsSpan(at - PtrSize)) >= k) || (i + 1 < n && k >= BtrfsKey.Read(buf.AsSpan(at + PtrSize)));
                if (keyDiff) Note(firstParent || orderBroken ? Expectation.MustDetect : Expectation.MayDetect, firstParent || orderBroken ? "key-ptr:key" : "key-ptr:key-shared-child");
                // A pointer generation of 0 means "not known": the kernel (verify_parent_transid) and btrfs check skip the
                // comparison with the child's header then, so only a non-zero generation must match.
                bool genZero = U64(buf, at + 25) == 0;
                if (genDiff) Note(firstParent && !genZero ? Expectation.MustDetect : Expectation.MayDetect,
                    genZero ? "key-ptr:generation-zero" : firstParent ? "key-ptr:generation" : "key-ptr:generation-shared-child");
            }
            for (int x = HeaderEnd + n * PtrSize; x < buf.Length; x++)
                if (orig[x] != buf[x]) { Note(Expectation.MustBeClean, "free-space"); break; }
        }
        return worst;
    }

    /// <summary>True when items [0, n) tile the data area as the block validator requires: item 0 ends at the block
    /// end, each item ends where the previous one starts, none reaches into the item headers.</summary>
    private static bool Tiled(byte[] block, int n)
    {
        long dataSize = block.Length - HeaderEnd, expectedEnd = dataSize, headersEnd = (long)n * ItemSize;
        for (int i = 0; i < n; i++)
        {
            long start = ReadU32(block, HeaderEnd + i * ItemSize + 17), end = start + ReadU32(block, HeaderEnd + i * ItemSize + 21);
            if (end != expectedEnd || start < headersEnd || end > dataSize) return false;
            expectedEnd = start;
        }
        return true;
    }

    private static string TreeGroup(LiveBlock b) => b.TreeId switch
    {
        ObjectIds.ExtentTree => "extent",
        ObjectIds.ChunkTree => "chunk",
        ObjectIds.RootTree => "root",
        ObjectIds.DevTree => "dev",
        ObjectIds.CsumTree => "csum",
        ObjectIds.FreeSpaceTree => "free-space",
        ObjectIds.UuidTree => "uuid",
        ObjectIds.TreeLog => "log",
        _ when ObjectIds.IsFsTree(b.TreeId) => "fs",
        _ => "other",
    };

    // ------------------------------------------------------------------ hand-made edits (regression tests)

    /// <summary>Applies <paramref name="edit"/> to the bytes of live block <paramref name="b"/>, recomputes its checksum
    /// and writes it to every copy.</summary>
    public void EditBlock(LiveBlock b, Action<byte[]> edit)
    {
        var buf = fx.ReadBlock(b);
        edit(buf);
        Recompute(buf);
        WriteBlock(b, buf, b.Copies.Count);
    }

    /// <summary>Applies <paramref name="edit"/> to the superblock and writes it to every copy of every device
    /// (checksums recomputed).</summary>
    public void EditSuper(Action<byte[]> edit)
    {
        var sb = (byte[])fx.Super.Clone();
        edit(sb);
        WriteSuperblocks(fx.Super, sb);
    }

    // ------------------------------------------------------------------ helpers

    private void Recompute(byte[] block) => Checksum.Compute(fx.CsumType, block.AsSpan(32), block.AsSpan(0, 32));

    /// <summary>Writes <paramref name="block"/> to copies 0 .. <paramref name="copies"/> - 1 of <paramref name="b"/>.</summary>
    private void WriteBlock(LiveBlock b, byte[] block, int copies)
    {
        for (int c = 0; c < copies; c++)
            foreach (var p in b.Copies[c])
                work.Write(p.Device, p.Physical, block.AsSpan(p.BlockOffset, p.Length));
    }

    private static ulong U64(byte[] b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at));
    private static uint ReadU32(byte[] b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at));
    private static void SetU32(byte[] b, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);
}
