using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>An opened (multi-)device btrfs filesystem: devices assembled by fsid and devid, the chosen
/// superblock, the chunk map, and verified tree-block reads with mirror fallback. Read-only throughout.</summary>
public sealed class BtrfsVolume : IDisposable
{
    private readonly Dictionary<ulong, BlockDevice> _byDevId;
    private readonly BlockCache _cache;
    private readonly List<DevItemInfo> _devItems = [];
    private readonly List<byte[]> _seedFsids = [];

    public Superblock Super { get; }

    /// <summary>The superblock copy that was used (device and mirror).</summary>
    public SuperblockCopy ChosenCopy { get; }

    /// <summary>Every superblock copy read on every device.</summary>
    public IReadOnlyList<SuperblockCopy> AllCopies { get; }

    public IReadOnlyList<BlockDevice> Devices { get; }
    public ChunkMap Chunks { get; } = new();
    public FindingBag Findings { get; }
    public IReadOnlyList<DevItemInfo> DevItems => _devItems;

    /// <summary>Devices the chunk tree lists that were not given (or not found).</summary>
    public IReadOnlyList<DevItemInfo> MissingDevices { get; private set; } = [];

    /// <summary>The root tree and chunk tree actually used: the superblock's, or a backup root's when those were
    /// unreadable (or when <see cref="VolumeOptions.BackupRoot"/> asked for one).</summary>
    public RootChoice RootTree { get; private set; } = null!;
    public RootChoice ChunkTree { get; private set; } = null!;

    /// <summary>The chunk tree walked by the check: the one belonging to <see cref="RootTree"/>'s generation (a backup
    /// root's own chunk root when the root tree came from a backup and that is readable), so the check sees one
    /// consistent snapshot. The chunk map itself always comes from <see cref="ChunkTree"/>.</summary>
    public RootChoice CheckedChunkTree { get; private set; } = null!;

    /// <summary>bytes_used of the snapshot being checked: the superblock's, or the backup root's.</summary>
    public ulong ExpectedBytesUsed => RootTree.BackupIndex == null ? Super.BytesUsed : RootTree.BytesUsed;

    /// <summary>The chunk tree uuid every tree block header carries, taken from the chunk root block (null if unreadable).</summary>
    public Guid? ChunkTreeUuid { get; private set; }

    /// <summary>The superblock says btrfs-image -r restored this image from a metadata dump (METADUMP or
    /// METADUMP_V2): data blocks read as zeros and a multi-device filesystem was rewritten onto one device.</summary>
    public bool IsRestoredMetadump => (Super.Flags & (Superblock.FlagMetadump | Superblock.FlagMetadumpV2)) != 0;

    /// <summary>The ZONED incompat feature is set.</summary>
    public bool IsZoned => (Super.IncompatFlags & Features.IncompatZoned) != 0;

    public uint NodeSize => Super.NodeSize;
    public uint SectorSize => Super.SectorSize;
    public ChecksumType CsumType => Super.CsumType;

    /// <summary>Human-readable notes on choices made while opening (which superblock copy, etc.).</summary>
    public List<string> Notes { get; } = [];

    private BtrfsVolume(Superblock super, SuperblockCopy chosen, List<SuperblockCopy> all, List<BlockDevice> devices,
        Dictionary<ulong, BlockDevice> byDevId, VolumeOptions options, FindingBag findings)
    {
        Super = super;
        ChosenCopy = chosen;
        AllCopies = all;
        Devices = devices;
        _byDevId = byDevId;
        _cache = new BlockCache(Math.Max(16, options.CacheBlocks));
        Findings = findings;
    }

    public BlockDevice? DeviceById(ulong devid) => _byDevId.GetValueOrDefault(devid);

    /// <summary>Opens the filesystem on <paramref name="paths"/>. Throws <see cref="VolumeException"/> only when
    /// nothing can be read; every other problem becomes a finding in <see cref="Findings"/>.</summary>
    public static BtrfsVolume Open(IReadOnlyList<string> paths, VolumeOptions? options = null, FindingBag? findings = null)
    {
        options ??= new VolumeOptions();
        findings ??= new FindingBag();
        if (paths.Count == 0) throw new VolumeException("no device given");
        if (options.BackupRoot is { } br && (br < 0 || br >= Superblock.BackupRootCount))
            throw new VolumeException($"--backup-root {br}: backup roots are numbered 0 to {Superblock.BackupRootCount - 1}");
        if (options.ZoneSize is { } zs && (zs < Superblock.Size * 2 || zs % Superblock.Size != 0))
            throw new VolumeException($"zone size {zs}: must be a multiple of {Superblock.Size} bytes, at least {Superblock.Size * 2}");
        if (options.SuperMirror is { } sm && (sm < 0 || sm >= Superblock.MirrorOffsets.Length))
            throw new VolumeException($"--super {sm}: copies are numbered 0 to {Superblock.MirrorOffsets.Length - 1}");

        var devices = new List<BlockDevice>();
        try
        {
            var allCopies = new List<SuperblockCopy>();
            var perDevice = new List<(BlockDevice Dev, SuperblockCopy Copy)>();
            foreach (string path in paths)
            {
                var dev = BlockDevice.Open(path, options.DirectIo);
                devices.Add(dev);
                if (dev.Length < Superblock.MirrorOffsets[0] + Superblock.Size)
                    throw new VolumeException($"{path}: too small for btrfs ({dev.Length} bytes; the superblock is at 65536)");
                var copies = SuperblockCopy.ReadAll(dev, options.ZoneSize ?? ZonedDevice.ZoneSizeOf(path));
                allCopies.AddRange(copies);
                SuperblockCopy? pick;
                if (options.SuperMirror is { } m)
                {
                    if (m >= copies.Count) throw new VolumeException($"{path}: too small to hold superblock copy {m} (at {Superblock.MirrorOffsets[m]})");
                    pick = copies[m];
                    if (!pick.IsValid) throw new VolumeException($"{path}: superblock copy {m} is not usable: {pick.Problem}");
                }
                else
                {
                    pick = copies.Where(c => c.IsValid).OrderByDescending(c => c.Superblock!.Generation).ThenBy(c => c.Mirror).FirstOrDefault();
                    if (pick == null)
                    {
                        var primary = copies[0];
                        string why = primary.Superblock is { MagicMatches: false } ? "not a btrfs filesystem (no btrfs magic at 64 KiB)" : "no valid superblock";
                        throw new VolumeException($"{path}: {why}: {string.Join("; ", copies.Select(c => $"copy {c.Mirror}: {c.Problem}"))}");
                    }
                }
                perDevice.Add((dev, pick));
            }

            // Assemble: every path must belong to one filesystem, each devid once. A sprout's seed devices keep their own
            // fsid (superblock flag SEEDING); the filesystem checked is the one that is not a seed (a seed given alone
            // is checked as itself).
            var main = perDevice.FirstOrDefault(p => (p.Copy.Superblock!.Flags & Superblock.FlagSeeding) == 0);
            if (main.Dev == null) main = perDevice[0];
            var fsid = main.Copy.Superblock!.Fsid;
            var byDevId = new Dictionary<ulong, BlockDevice>();
            var seeds = new List<(BlockDevice Dev, Superblock Super)>();
            foreach (var (dev, copy) in perDevice)
            {
                var sb = copy.Superblock!;
                if (sb.Fsid != fsid)
                {
                    if ((sb.Flags & Superblock.FlagSeeding) == 0)
                        throw new VolumeException($"{dev.Path}: holds another filesystem (fsid {sb.Fsid}), not {fsid} of {main.Dev.Path}");
                    seeds.Add((dev, sb));
                }
                ulong devid = sb.DevItem.DevId;
                if (byDevId.TryGetValue(devid, out var other))
                    throw new VolumeException($"{dev.Path}: devid {devid} was already given as {other.Path}");
                byDevId[devid] = dev;
            }

            var chosen = perDevice.Where(p => p.Copy.Superblock!.Fsid == fsid).Select(p => p.Copy).OrderByDescending(c => c.Superblock!.Generation).First();
            var super = chosen.Superblock!;
            var vol = new BtrfsVolume(super, chosen, allCopies, devices, byDevId, options, findings);
            foreach (var (dev, sb) in seeds)
            {
                vol._seedFsids.Add(sb.MetadataFsidBytes.ToArray());
                vol.Notes.Add($"{dev.Path} is a seed device (fsid {sb.Fsid}, devid {sb.DevItem.DevId}) of this sprout filesystem; tree blocks written before the sprout carry its fsid");
            }
            vol.Notes.Add(options.SuperMirror is { } sel
                ? $"using superblock copy {sel} of {chosen.Device.Path} (generation {super.Generation}), as asked"
                : $"using superblock copy {chosen.Mirror} of {chosen.Device.Path} (generation {super.Generation}): the valid copy with the highest generation");
            ulong unknownIncompat = super.IncompatFlags & ~Features.KnownIncompat;
            if (unknownIncompat != 0 && !options.AcceptUnknownIncompat)
                throw new VolumeException($"{chosen.Device.Path}: the superblock sets incompat feature {string.Join(", ", Features.IncompatNames(unknownIncompat))} (incompat_flags 0x{super.IncompatFlags:x}), which this version does not know; like the kernel, it refuses to read such a filesystem");
            ulong unknownCompatRo = super.CompatRoFlags & ~Features.KnownCompatRo;
            if (unknownCompatRo != 0)
                vol.Notes.Add($"compat_ro feature {string.Join(", ", Features.CompatRoNames(unknownCompatRo))} is not known to this version: checked anyway, but what that feature adds is not verified");
            if ((super.Flags & Superblock.FlagChangingMetaCsum) != 0)
                vol.Notes.Add("btrfstune --csum was interrupted while rewriting tree blocks (superblock flag CHANGING_META_CSUM): each tree block may carry the old or the new checksum type; both are accepted");
            if ((super.Flags & Superblock.FlagChangingDataCsum) != 0)
                vol.Notes.Add("btrfstune --csum was interrupted while writing new data checksums (superblock flag CHANGING_DATA_CSUM): csum items under CSUM_CHANGE are the new type's");
            if ((super.Flags & Superblock.FlagChangingBgTree) != 0)
                vol.Notes.Add("btrfstune --convert-to-block-group-tree was interrupted (superblock flag CHANGING_BG_TREE): block group items are read from both the extent tree and the block group tree");
            if (vol.IsRestoredMetadump)
                vol.Notes.Add("restored from a metadata dump by btrfs-image -r (superblock flag METADUMP" + ((super.Flags & Superblock.FlagMetadumpV2) != 0 ? "_V2" : "") +
                              "): data blocks read as zeros and devices were rewritten onto this one, so device sizes and data are not checked");
            vol.ReportSuperblockCopies();
            vol.CheckSuperblockFields();
            vol.LoadSysChunkArray();
            vol.ChooseChunkTreeAndLoad(options.BackupRoot);
            vol.ChooseRootTree(options.BackupRoot);
            vol.CheckDevices();
            return vol;
        }
        catch
        {
            foreach (var d in devices) d.Dispose();
            throw;
        }
    }

    private void ReportSuperblockCopies()
    {
        foreach (var c in AllCopies)
        {
            // The kernel writes a mirror only where it fits inside the device's btrfs size.
            var owner = c.Superblock is { MagicMatches: true } ? c.Superblock : Super;
            ulong devSize = c.Device == ChosenCopy.Device ? Super.DevItem.TotalBytes : owner.DevItem.TotalBytes;
            if (c.Mirror > 0 && (ulong)c.Offset + Superblock.Size > devSize) continue;
            // Zoned filesystems keep their superblock mirrors in log zones, not at the fixed offsets (only copy 0 of a
            // zone-emulating image file or conventional zone sits at 64 KiB): nothing is expected at 64 MiB / 256 GiB.
            if (c.Mirror > 0 && IsZoned && !c.IsValid) continue;
            if (c.NeverWritten && c.Mirror > 0)
            {
                Findings.Add(new Finding(FindingCode.SuperblockCopyNeverWritten, Severity.Info,
                    $"superblock copy {c.Mirror} at {c.Offset} was never written (all zeros): " + (IsRestoredMetadump
                        ? "btrfs-image -r writes only the primary copy"
                        : "the device may have grown since the last commit, or the image was restored by a tool that writes only the primary copy; the kernel rewrites it at the next commit"),
                    Bytenr: (ulong)c.Offset, Device: c.Device.Path, Mirror: c.Mirror));
                continue;
            }
            if (!c.IsValid)
            {
                var code = c.Superblock == null ? FindingCode.SuperblockCopyTruncated
                    : !c.Superblock.MagicMatches ? FindingCode.SuperblockBadMagic
                    : !Checksum.IsKnown(c.Superblock.CsumTypeRaw) ? FindingCode.SuperblockUnknownChecksumType
                    : !c.Superblock.ChecksumValid ? FindingCode.SuperblockBadChecksum
                    : FindingCode.SuperblockBytenrMismatch;
                Findings.Add(new Finding(code, Severity.Error, $"superblock copy {c.Mirror} at {c.Offset}: {c.Problem}",
                    Bytenr: (ulong)c.Offset, Device: c.Device.Path, Mirror: c.Mirror));
            }
            else if (c.Superblock!.Fsid == Super.Fsid && c.Superblock.Generation != Super.Generation)
            {
                Findings.Add(new Finding(FindingCode.SuperblockGenerationMismatch, Severity.Warning,
                    $"superblock copy {c.Mirror} has generation {c.Superblock.Generation}, the copy in use has {Super.Generation}",
                    Bytenr: (ulong)c.Offset, Device: c.Device.Path, Mirror: c.Mirror,
                    Expected: Super.Generation.ToString(), Found: c.Superblock.Generation.ToString()));
            }
        }
    }

    private void CheckSuperblockFields() => SuperblockRules.Check(Super, ChosenCopy, Findings);

    private void LoadSysChunkArray()
    {
        var arr = Super.SysChunkArray;
        int pos = 0;
        while (pos < arr.Length)
        {
            if (arr.Length - pos < BtrfsKey.Size + ChunkItem.HeaderSize)
            {
                SysArrayProblem($"{arr.Length - pos} trailing bytes at offset {pos}, too short for a chunk");
                return;
            }
            var key = BtrfsKey.Read(arr[pos..]);
            pos += BtrfsKey.Size;
            if (key.ItemType != ItemType.ChunkItem)
            {
                SysArrayProblem($"entry at offset {pos - BtrfsKey.Size} has key type {ItemTypes.Name(key.Type)}, expected CHUNK_ITEM");
                return;
            }
            var ci = new ChunkItem(arr[pos..]);
            long size = ci.ImpliedSize;
            if (pos + size > arr.Length)
            {
                SysArrayProblem($"chunk at logical {key.Offset} claims {ci.NumStripes} stripes ({size} bytes), only {arr.Length - pos} left");
                return;
            }
            var chunk = ChunkMap.Decode(key, arr.Slice(pos, (int)size), out string? problem);
            pos += (int)size;
            if (chunk == null) { SysArrayProblem($"chunk at logical {key.Offset}: {problem}"); continue; }
            var rules = new SysArrayRuleSink(Findings, ChosenCopy.Device.Path, key.Offset);
            ChunkRules.Check(key.Offset, new ChunkItem(arr.Slice(pos - (int)size, (int)size)), Super.SectorSize, Super.IncompatFlags, ref rules);
            if ((chunk.Type & BlockGroupFlags.System) == 0)
                SysArrayProblem($"chunk at logical {key.Offset} is {chunk.Type.Describe()}, expected SYSTEM");
            if (Chunks.TryAdd(chunk) is { } clash)
                Findings.Add(new Finding(FindingCode.ChunkOverlap, Severity.Error,
                    $"sys_chunk_array chunk [{chunk.Logical}, {chunk.End}) overlaps chunk [{clash.Logical}, {clash.End})", Bytenr: chunk.Logical));
        }
        if (Chunks.Chunks.Count == 0)
            throw new VolumeException("the superblock's sys_chunk_array holds no usable chunk; cannot locate the chunk tree");
    }

    /// <summary>A sys_chunk_array chunk that breaks a rule of btrfs_check_chunk_valid: 200 at the chunk's logical start.</summary>
    private readonly struct SysArrayRuleSink(FindingBag findings, string device, ulong logical) : IChunkRuleSink
    {
        public void Broken(string what, string? expected, string? found) =>
            findings.Add(new Finding(FindingCode.SysChunkArrayInvalid, Severity.Error, $"sys_chunk_array: chunk at logical {logical}: {what}",
                Bytenr: logical, Device: device, Expected: expected, Found: found));
    }

    private void SysArrayProblem(string message) =>
        Findings.Add(new Finding(FindingCode.SysChunkArrayInvalid, Severity.Error, "sys_chunk_array: " + message,
            Device: ChosenCopy.Device.Path));

    /// <summary>Reads every leaf of the chunk tree: CHUNK_ITEMs extend the map, DEV_ITEMs list the devices.</summary>
    /// <summary>Backup roots, newest tree root generation first (slots that were never written are skipped).</summary>
    private IEnumerable<(int Index, ulong TreeRoot, int TreeLevel, ulong TreeGen, ulong ChunkRoot, int ChunkLevel, ulong ChunkGen)> BackupRootsNewestFirst()
    {
        var list = new List<(int, ulong, int, ulong, ulong, int, ulong)>();
        for (int i = 0; i < Superblock.BackupRootCount; i++)
        {
            var b = Super.GetBackupRoot(i);
            if (b.TreeRoot == 0 && b.ChunkRoot == 0) continue;
            list.Add((i, b.TreeRoot, b.TreeRootLevel, b.TreeRootGen, b.ChunkRoot, b.ChunkRootLevel, b.ChunkRootGen));
        }
        return list.OrderByDescending(x => x.Item4);
    }

    private bool RootReadable(ulong bytenr, int level, out string why)
    {
        var r = ReadTreeBlock(bytenr);
        if (r.Block == null) { why = r.Describe(); return false; }
        if (r.Block.Level != level || level >= Header.MaxLevel) { why = $"level {r.Block.Level}, expected {level}"; return false; }
        why = "";
        return true;
    }

    private void ChooseChunkTreeAndLoad(int? backup)
    {
        var primary = new RootChoice(Super.ChunkRoot, Super.ChunkRootLevel, Super.ChunkRootGeneration, null);
        RootChoice chosen = primary;
        if (backup is { } n)
        {
            var b = Super.GetBackupRoot(n);
            var cand = new RootChoice(b.ChunkRoot, b.ChunkRootLevel, b.ChunkRootGen, n);
            if (b.ChunkRoot != 0 && RootReadable(b.ChunkRoot, b.ChunkRootLevel, out _)) chosen = cand;
            else Notes.Add($"backup root {n} has no readable chunk root; using the superblock's chunk root");
        }
        else if (!RootReadable(primary.Bytenr, primary.Level, out string why))
        {
            foreach (var b in BackupRootsNewestFirst())
            {
                if (b.ChunkRoot == 0 || b.ChunkRoot == primary.Bytenr || !RootReadable(b.ChunkRoot, b.ChunkLevel, out _)) continue;
                chosen = new RootChoice(b.ChunkRoot, b.ChunkLevel, b.ChunkGen, b.Index);
                Findings.Add(new Finding(FindingCode.ChunkTreeFallback, Severity.Error,
                    $"chunk root {primary.Bytenr} is unreadable ({why}); using backup root {b.Index}'s chunk root {b.ChunkRoot} (generation {b.ChunkGen})",
                    Bytenr: primary.Bytenr, Tree: ObjectIds.ChunkTree, Expected: primary.Bytenr.ToString(), Found: b.ChunkRoot.ToString()));
                break;
            }
        }
        ChunkTree = chosen;
        if (chosen.BackupIndex is { } bi) Notes.Add($"using backup root {bi}'s chunk root {chosen.Bytenr} (generation {chosen.Generation})");
        LoadChunkTree(chosen);
    }

    private void ChooseRootTree(int? backup)
    {
        var primary = new RootChoice(Super.Root, Super.RootLevel, Super.Generation, null, Super.BytesUsed);
        RootChoice chosen = primary;
        if (backup is { } n)
        {
            var b = Super.GetBackupRoot(n);
            if (b.TreeRoot == 0) throw new VolumeException($"--backup-root {n}: that backup root slot is empty");
            chosen = new RootChoice(b.TreeRoot, b.TreeRootLevel, b.TreeRootGen, n, b.BytesUsed);
            Notes.Add($"using backup root {n}: root tree {b.TreeRoot} (generation {b.TreeRootGen}), as asked");
        }
        else if (!RootReadable(primary.Bytenr, primary.Level, out string why))
        {
            foreach (var b in BackupRootsNewestFirst())
            {
                if (b.TreeRoot == 0 || b.TreeRoot == primary.Bytenr || !RootReadable(b.TreeRoot, b.TreeLevel, out _)) continue;
                chosen = new RootChoice(b.TreeRoot, b.TreeLevel, b.TreeGen, b.Index, Super.GetBackupRoot(b.Index).BytesUsed);
                Findings.Add(new Finding(FindingCode.RootTreeFallback, Severity.Error,
                    $"root tree {primary.Bytenr} is unreadable ({why}); using backup root {b.Index}: root tree {b.TreeRoot} (generation {b.TreeGen}); what changed since then is not seen",
                    Bytenr: primary.Bytenr, Tree: ObjectIds.RootTree, Expected: primary.Bytenr.ToString(), Found: b.TreeRoot.ToString()));
                Notes.Add($"root tree unreadable; using backup root {b.Index} (generation {b.TreeGen})");
                break;
            }
        }
        RootTree = chosen;
        CheckedChunkTree = ChunkTree;
        if (chosen.BackupIndex is { } idx)
        {
            var b = Super.GetBackupRoot(idx);
            if (b.ChunkRoot != 0 && b.ChunkRoot != ChunkTree.Bytenr && RootReadable(b.ChunkRoot, b.ChunkRootLevel, out _))
                CheckedChunkTree = new RootChoice(b.ChunkRoot, b.ChunkRootLevel, b.ChunkRootGen, idx);
        }
    }

    private void LoadChunkTree(RootChoice root)
    {
        var seen = new HashSet<ulong>();
        var stack = new Stack<(ulong Bytenr, int Level)>();
        stack.Push((root.Bytenr, root.Level));
        while (stack.Count > 0)
        {
            var (bytenr, level) = stack.Pop();
            if (!seen.Add(bytenr)) continue;
            var read = ReadTreeBlock(bytenr);
            if (read.Block == null)
            {
                // The tree walk reports the unreadable block itself; here: what it means for address mapping.
                Findings.Add(new Finding(FindingCode.SubtreeNotChecked, Severity.Warning,
                    $"chunk tree block {bytenr} is unreadable ({read.Describe()}): the chunks it holds are unknown, so addresses in them cannot be mapped",
                    Bytenr: bytenr, Tree: ObjectIds.ChunkTree));
                continue;
            }
            var view = read.Block.View;
            if (bytenr == root.Bytenr) ChunkTreeUuid = Uuids.Read(view.Header.ChunkTreeUuid);
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
                    if (key.ItemType == ItemType.ChunkItem) AddChunkItem(bytenr, i, key, view.ItemData(i));
                    else if (key.ItemType == ItemType.DevItem)
                    {
                        var data = view.ItemData(i);
                        if (data.Length < DevItem.Size) continue;
                        var di = new DevItem(data);
                        _devItems.Add(new DevItemInfo(di.DevId, di.Uuid, di.Fsid, di.TotalBytes, di.BytesUsed));
                    }
                }
            }
            catch (BtrfsFormatException) { /* structural damage: the tree walker reports it with context */ }
        }
    }

    private void AddChunkItem(ulong block, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        var chunk = ChunkMap.Decode(key, data, out string? problem);
        if (chunk == null)
        {
            Findings.Add(new Finding(FindingCode.ChunkItemInvalid, Severity.Error, $"chunk item unusable: {problem}",
                Bytenr: block, Tree: ObjectIds.ChunkTree, Slot: slot, Key: key));
            return;
        }
        var clash = Chunks.TryAdd(chunk);
        if (clash == null) return;
        bool same = clash.Logical == chunk.Logical && clash.Length == chunk.Length && clash.Type == chunk.Type &&
                    clash.Stripes.AsSpan().SequenceEqual(chunk.Stripes);
        if (same) return; // SYSTEM chunks appear in both the sys_chunk_array and the chunk tree
        bool fromSys = (clash.Type & BlockGroupFlags.System) != 0 && clash.Logical == chunk.Logical;
        Findings.Add(new Finding(fromSys ? FindingCode.ChunkMismatchSysArray : FindingCode.ChunkOverlap, Severity.Error,
            fromSys ? $"chunk tree item for [{chunk.Logical}, {chunk.End}) differs from the sys_chunk_array copy"
                    : $"chunk [{chunk.Logical}, {chunk.End}) overlaps chunk [{clash.Logical}, {clash.End}) (chunk tree leaf {block})",
            Bytenr: chunk.Logical, Tree: ObjectIds.ChunkTree, Slot: slot, Key: key));
    }

    private void CheckDevices()
    {
        if (_devItems.Count == 0)
        {
            // The chunk tree is unreadable (perhaps it lives on the missing device): name the missing devices from
            // the chunks we do know (the sys_chunk_array's at least) and from the superblock's device count.
            var known = new Dictionary<ulong, Guid>();
            foreach (var c in Chunks.Chunks)
                foreach (var st in c.Stripes)
                    if (!_byDevId.ContainsKey(st.DevId)) known.TryAdd(st.DevId, st.DevUuid);
            MissingDevices = known.Select(k => new DevItemInfo(k.Key, k.Value, Super.Fsid, 0, 0)).ToList();
            foreach (var (devid, uuid) in known)
                Findings.Add(new Finding(FindingCode.DeviceMissing, Severity.Error,
                    $"device devid {devid} uuid {uuid} is missing (named by the chunk map; the chunk tree's device list could not be read)"));
            if ((ulong)_byDevId.Count < Super.NumDevices && known.Count < (int)Super.NumDevices - _byDevId.Count)
                Findings.Add(new Finding(FindingCode.DeviceMissing, Severity.Error,
                    $"the superblock counts {Super.NumDevices} devices but {_byDevId.Count} were given; the chunk tree that would name the others is unreadable",
                    Expected: Super.NumDevices.ToString(), Found: _byDevId.Count.ToString()));
            return;
        }
        var missing = _devItems.Where(d => !_byDevId.ContainsKey(d.DevId)).ToList();
        MissingDevices = missing;
        foreach (var d in missing)
        {
            bool needed = Chunks.Chunks.Any(c => c.Stripes.Any(s => s.DevId == d.DevId));
            Findings.Add(new Finding(FindingCode.DeviceMissing, needed ? Severity.Error : Severity.Warning,
                $"device devid {d.DevId} uuid {d.Uuid} is missing" + (needed ? "; reads fall back to other copies where the profile has them" : "")));
        }
        foreach (var (devid, dev) in _byDevId)
        {
            var item = _devItems.FirstOrDefault(d => d.DevId == devid);
            if (item == null)
                Findings.Add(new Finding(FindingCode.DeviceDuplicate, Severity.Error,
                    $"{dev.Path} claims devid {devid}, which no DEV_ITEM of the chunk tree lists", Device: dev.Path));
            else if ((ulong)dev.Length < item.TotalBytes && !IsRestoredMetadump)
                Findings.Add(new Finding(FindingCode.DeviceSizeMismatch, Severity.Error,
                    $"device {dev.Path} (devid {devid}) is smaller than its DEV_ITEM says", Device: dev.Path,
                    Expected: $">= {item.TotalBytes}", Found: dev.Length.ToString()));
        }
    }

    /// <summary>Reads the tree block at <paramref name="logical"/>: tries each copy until one has a good checksum,
    /// the right bytenr and this filesystem's fsid. Cached. Never throws for bad data.</summary>
    public TreeBlockRead ReadTreeBlock(ulong logical)
    {
        if (_cache.TryGet(logical, out var cached)) return cached;
        var result = ReadTreeBlockUncached(logical);
        _cache.Add(result);
        return result;
    }

    public (long Hits, long Misses) CacheStats => (_cache.Hits, _cache.Misses);

    /// <summary>Reads <paramref name="count"/> consecutive tree blocks starting at <paramref name="logical"/> from copy 0
    /// in as few reads as the mapping allows, into <paramref name="dest"/> (count * nodesize bytes). False when the run
    /// leaves its chunk or a read comes up short: the caller then reads block by block. Nothing is verified or cached.</summary>
    public bool TryReadRun(ulong logical, int count, Span<byte> dest)
    {
        var chunk = Chunks.Find(logical);
        ulong len = (ulong)count * NodeSize;
        if (chunk == null || logical + len > chunk.End) return false;
        return ReadCopy(chunk, logical, 0, dest[..(int)len]) == null;
    }

    /// <summary>The tree block at <paramref name="offset"/> in <paramref name="buffer"/>, where <see cref="TryReadRun"/>
    /// read copy 0 (<paramref name="readOk"/>: whether it did), when that copy verifies; no copy is made. Null otherwise:
    /// the caller then uses <see cref="ReadTreeBlockUncached"/>, which tries every copy and says what failed.</summary>
    public TreeBlock? VerifiedInPlace(ulong logical, bool readOk, byte[] buffer, int offset)
    {
        int size = (int)NodeSize;
        return readOk && VerifyTreeBlock(logical, buffer.AsSpan(offset, size), 0) == null ? new TreeBlock(logical, buffer, offset, size, 0) : null;
    }

    /// <summary>The physical offset of copy 0 of <paramref name="logical"/> on its device; ulong.MaxValue when
    /// unmapped. Sorting reads by it issues each device's reads in ascending order and keeps the devices of a
    /// multi-device set interleaved (sorting by device first would read them one after the other).</summary>
    public ulong PhysicalOrder(ulong logical)
    {
        var chunk = Chunks.Find(logical);
        return chunk == null ? ulong.MaxValue : chunk.Map(logical, 0, out _).Offset;
    }

    /// <summary>Read-ahead: asks the kernel to start reading copy 0 of <paramref name="count"/> blocks from
    /// <paramref name="logical"/> (one request per stripe piece); the scan hints the runs it will read next.</summary>
    public void ReadAhead(ulong logical, int count)
    {
        var chunk = Chunks.Find(logical);
        ulong len = (ulong)count * NodeSize;
        if (chunk == null || logical + len > chunk.End) return;
        for (ulong done = 0; done < len;)
        {
            var loc = chunk.Map(logical + done, 0, out ulong contiguous);
            ulong n = Math.Min(len - done, contiguous);
            if (loc.Offset <= long.MaxValue && _byDevId.TryGetValue(loc.DevId, out var dev)) dev.WillNeed((long)loc.Offset, (long)n);
            done += n;
        }
    }

    /// <summary>Checks one copy's bytes: checksum, bytenr, fsid. Null when good.</summary>
    public CopyFailure? VerifyTreeBlock(ulong logical, ReadOnlySpan<byte> block, int copy)
    {
        Span<byte> csum = stackalloc byte[Checksum.FieldSize];
        var h = new Header(block);
        if (!Checksum.Verify(CsumType, block, csum) && !VerifiesWithNewCsumType(block))
            return new CopyFailure(copy, FindingCode.TreeBlockChecksumMismatch,
                $"checksum mismatch: have {Checksum.ToHex(CsumType, h.Csum)}, computed {Checksum.ToHex(CsumType, csum)}");
        if (h.Bytenr != logical)
            return new CopyFailure(copy, FindingCode.TreeBlockBytenrMismatch, $"header bytenr {h.Bytenr}, expected {logical}");
        if (!h.Fsid.SequenceEqual(Super.MetadataFsidBytes) && !IsSeedFsid(h.Fsid))
            return new CopyFailure(copy, FindingCode.TreeBlockFsidMismatch,
                $"header fsid {Uuids.Format(h.Fsid)}, expected {Uuids.Format(Super.MetadataFsidBytes)}");
        return null;
    }

    private int _newCsumType = -1;

    /// <summary>While btrfstune --csum rewrites tree blocks (superblock CHANGING_META_CSUM), each block carries the old
    /// type (the superblock's) or the new one: the first other known type a block verifies with is taken as the new
    /// type, and from then on only it. (The new type is also named by the root tree's CSUM_CHANGE TEMPORARY_ITEM, but
    /// the root tree itself may already carry it.)</summary>
    private bool VerifiesWithNewCsumType(ReadOnlySpan<byte> block)
    {
        if ((Super.Flags & Superblock.FlagChangingMetaCsum) == 0) return false;
        int known = Volatile.Read(ref _newCsumType);
        foreach (var t in new[] { ChecksumType.Crc32c, ChecksumType.XxHash64, ChecksumType.Sha256, ChecksumType.Blake2b })
        {
            if (t == CsumType || (known >= 0 && (int)t != known) || !Checksum.Verify(t, block)) continue;
            if (known < 0) Interlocked.CompareExchange(ref _newCsumType, (int)t, -1);
            return Volatile.Read(ref _newCsumType) == (int)t;
        }
        return false;
    }

    /// <summary>A seed device's fsid: blocks written while the filesystem was that seed keep it in their header.</summary>
    private bool IsSeedFsid(ReadOnlySpan<byte> fsid)
    {
        foreach (var s in _seedFsids) if (fsid.SequenceEqual(s)) return true;
        return false;
    }

    /// <summary>Like <see cref="ReadTreeBlock"/> but bypasses the cache (for single passes over all metadata).</summary>
    public TreeBlockRead ReadTreeBlockUncached(ulong logical)
    {
        int size = (int)NodeSize;
        var failures = new List<CopyFailure>();
        var chunk = Chunks.Find(logical);
        if (chunk == null)
        {
            failures.Add(new CopyFailure(0, FindingCode.LogicalAddressUnmapped, $"logical {logical} is in no chunk"));
            return new TreeBlockRead(logical, null, failures);
        }
        if (logical + (ulong)size > chunk.End)
        {
            failures.Add(new CopyFailure(0, FindingCode.LogicalAddressUnmapped,
                $"block [{logical}, {logical + (ulong)size}) crosses the end of chunk [{chunk.Logical}, {chunk.End})"));
            return new TreeBlockRead(logical, null, failures);
        }
        var buf = GC.AllocateUninitializedArray<byte>(size); // every byte is read (or the copy fails and is dropped)
        for (int copy = 0; copy < chunk.Copies; copy++)
        {
            var fail = ReadCopy(chunk, logical, copy, buf) ?? VerifyTreeBlock(logical, buf, copy);
            if (fail == null) return new TreeBlockRead(logical, new TreeBlock(logical, buf, copy), failures);
            failures.Add(fail);
        }
        return new TreeBlockRead(logical, null, failures);
    }

    private CopyFailure? ReadCopy(Chunk chunk, ulong logical, int copy, Span<byte> dest)
    {
        if (copy == 1 && chunk.Profile is RaidProfile.Raid5 or RaidProfile.Raid6) return RebuildFromParity(chunk, logical, dest);
        int done = 0;
        while (done < dest.Length)
        {
            var loc = chunk.Map(logical + (ulong)done, copy, out ulong contiguous);
            int n = (int)Math.Min((ulong)(dest.Length - done), contiguous);
            if (!_byDevId.TryGetValue(loc.DevId, out var dev))
                return new CopyFailure(copy, FindingCode.TreeBlockUnreadable, $"device devid {loc.DevId} is missing", loc.DevId, loc.Offset, DeviceMissing: true);
            if (loc.Offset > long.MaxValue)
                return new CopyFailure(copy, FindingCode.StripeBeyondDevice, $"physical offset {loc.Offset} is out of range", loc.DevId, loc.Offset);
            int got = dev.Read((long)loc.Offset, dest.Slice(done, n));
            if (got < n)
                return new CopyFailure(copy, FindingCode.StripeBeyondDevice,
                    $"short read at devid {loc.DevId} physical {loc.Offset}: {got} of {n} bytes (device is {dev.Length} bytes)", loc.DevId, loc.Offset);
            done += n;
        }
        return null;
    }

    private static void XorInto(Span<byte> acc, ReadOnlySpan<byte> src)
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
            for (int w = System.Numerics.Vector<byte>.Count; i + w <= acc.Length; i += w)
                (new System.Numerics.Vector<byte>(acc[i..]) ^ new System.Numerics.Vector<byte>(src[i..])).CopyTo(acc[i..]);
        for (; i < acc.Length; i++) acc[i] ^= src[i];
    }

    /// <summary>RAID5/6 with one data stripe lost: data = P xor the row's other data stripes, piece by piece.</summary>
    private CopyFailure? RebuildFromParity(Chunk chunk, ulong logical, Span<byte> dest)
    {
        int done = 0;
        byte[] tmp = new byte[Math.Min(dest.Length, 1 << 16)];
        while (done < dest.Length)
        {
            var (target, others) = chunk.ParityRow(logical + (ulong)done, out ulong contiguous);
            int n = (int)Math.Min((ulong)(dest.Length - done), contiguous);
            var piece = dest.Slice(done, n);
            piece.Clear();
            foreach (var loc in others)
            {
                if (!_byDevId.TryGetValue(loc.DevId, out var dev))
                    return new CopyFailure(1, FindingCode.TreeBlockUnreadable,
                        $"parity rebuild impossible: device devid {loc.DevId} is missing too", loc.DevId, loc.Offset, DeviceMissing: true);
                if (tmp.Length < n) tmp = new byte[n];
                int got = loc.Offset > long.MaxValue ? 0 : dev.Read((long)loc.Offset, tmp.AsSpan(0, n));
                if (got < n)
                    return new CopyFailure(1, FindingCode.StripeBeyondDevice, $"parity rebuild: short read at devid {loc.DevId} physical {loc.Offset}", loc.DevId, loc.Offset);
                XorInto(piece, tmp.AsSpan(0, n));
            }
            done += n;
        }
        return null;
    }

    /// <summary>Reads raw bytes of one copy of a logical range (for data and dumps). Returns false with a reason on failure.</summary>
    public bool TryReadLogical(ulong logical, Span<byte> dest, int copy, out string? problem)
    {
        problem = null;
        var chunk = Chunks.Find(logical);
        if (chunk == null) { problem = $"logical {logical} is in no chunk"; return false; }
        if (logical + (ulong)dest.Length > chunk.End) { problem = "range crosses the end of its chunk"; return false; }
        if (copy >= chunk.Copies) { problem = $"chunk has {chunk.Copies} copies"; return false; }
        var fail = ReadCopy(chunk, logical, copy, dest);
        problem = fail?.Reason;
        return fail == null;
    }

    public void Dispose()
    {
        foreach (var d in Devices) d.Dispose();
    }
}
