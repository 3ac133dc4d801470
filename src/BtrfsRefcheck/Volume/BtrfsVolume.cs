using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>An opened (multi-)device btrfs filesystem: devices assembled by fsid and devid, the chosen
/// superblock, the chunk map, and verified tree-block reads with mirror fallback. Read-only throughout.</summary>
public sealed class BtrfsVolume : IDisposable
{
    private readonly Dictionary<ulong, BlockDevice> _byDevId;
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
    public IReadOnlyList<DevItemInfo> MissingDevices { get; internal set; } = [];

    /// <summary>The root tree and chunk tree actually used: the superblock's, or a backup root's when those were
    /// unreadable (or when <see cref="VolumeOptions.BackupRoot"/> asked for one).</summary>
    public RootChoice RootTree { get; internal set; } = null!;
    public RootChoice ChunkTree { get; internal set; } = null!;

    /// <summary>The chunk tree walked by the check: the one belonging to <see cref="RootTree"/>'s generation (a backup
    /// root's own chunk root when the root tree came from a backup and that is readable), so the check sees one
    /// consistent snapshot. The chunk map itself always comes from <see cref="ChunkTree"/>.</summary>
    public RootChoice CheckedChunkTree { get; internal set; } = null!;

    /// <summary>bytes_used of the snapshot being checked: the superblock's, or the backup root's.</summary>
    public ulong ExpectedBytesUsed => RootTree.BackupIndex == null ? Super.BytesUsed : RootTree.BytesUsed;

    /// <summary>The chunk tree uuid every tree block header carries, taken from the chunk root block (null if unreadable).</summary>
    public Guid? ChunkTreeUuid { get; internal set; }

    /// <summary>The CHUNK_ITEMs (leaf, slot) the chunk map loader reported unusable (201) while loading the chunk tree;
    /// the item validator does not report them again (<see cref="ChunkRules.CheckItem"/>).</summary>
    public IReadOnlySet<(ulong Leaf, int Slot)> UnusableChunkItems => _unusableChunkItems;
    internal readonly HashSet<(ulong Leaf, int Slot)> _unusableChunkItems = [];

    /// <summary>The superblock says btrfs-image -r restored this image from a metadata dump (METADUMP or
    /// METADUMP_V2): data blocks read as zeros and a multi-device filesystem was rewritten onto one device.</summary>
    public bool IsRestoredMetadump => (Super.Flags & (Superblock.FlagMetadump | Superblock.FlagMetadumpV2)) != 0;

    /// <summary>The volume is a btrfs-image metadata dump read in place (null otherwise): every tree block by its logical
    /// address, one copy, resealed with crc32c; no data, no superblock mirrors, no device sizes.</summary>
    public MetadumpImage? Metadump { get; }

    /// <summary>What cannot be checked on this volume because it does not hold it (a metadata dump: data, device sizes,
    /// superblock mirrors, ...): said once, never reported as findings. Empty otherwise (a restored dump says its own
    /// note, <see cref="IsRestoredMetadump"/>).</summary>
    public IReadOnlyList<string> NotCheckable { get; internal set; } = [];

    /// <summary>btrfs-image -s or -ss replaced the file names (found on a dump or a restored dump): name hashes are
    /// not checked.</summary>
    public bool NamesSanitized { get; internal set; }

    /// <summary>The ZONED incompat feature is set.</summary>
    public bool IsZoned => (Super.IncompatFlags & Features.IncompatZoned) != 0;

    public uint NodeSize => Super.NodeSize;
    public uint SectorSize => Super.SectorSize;
    public ChecksumType CsumType => Super.CsumType;

    /// <summary>Human-readable notes on choices made while opening (which superblock copy, etc.).</summary>
    public List<string> Notes { get; } = [];

    private BtrfsVolume(Superblock super, SuperblockCopy chosen, List<SuperblockCopy> all, List<BlockDevice> devices,
        Dictionary<ulong, BlockDevice> byDevId, VolumeOptions options, FindingBag findings, MetadumpImage? dump = null)
    {
        Super = super;
        ChosenCopy = chosen;
        AllCopies = all;
        Devices = devices;
        _byDevId = byDevId;
        Metadump = dump;
        Reader = new TreeBlockReader(super, Chunks, dump ?? (IBlockSource)new DeviceBlockSource(byDevId), _seedFsids, options.CacheBlocks);
        Findings = findings;
    }

    /// <summary>A metadata dump: its superblock, no device by devid (the dump stands for all of them).</summary>
    internal static BtrfsVolume ForMetadump(MetadumpImage dump, SuperblockCopy copy, List<BlockDevice> devices, VolumeOptions options, FindingBag findings) =>
        new(copy.Superblock!, copy, [copy], devices, [], options, findings, dump);

    public BlockDevice? DeviceById(ulong devid) => _byDevId.GetValueOrDefault(devid);

    /// <summary>The devices given, by devid.</summary>
    internal IReadOnlyDictionary<ulong, BlockDevice> DevicesById => _byDevId;

    internal void AddDevItem(DevItemInfo d) => _devItems.Add(d);

    /// <summary>Opens the filesystem on <paramref name="paths"/>. Throws <see cref="VolumeException"/> only when
    /// nothing can be read; every other problem becomes a finding in <see cref="Findings"/>.</summary>
    public static BtrfsVolume Open(IReadOnlyList<string> paths, VolumeOptions? options = null, FindingBag? findings = null)
    {
        options ??= new VolumeOptions();
        findings ??= new FindingBag();
        if (paths.Count == 0) throw new VolumeException("no device given");
        if (options.BackupRoot is { } br && (br < 0 || br >= Superblock.BackupRootCount))
            throw new VolumeException($"backup root {br}: backup roots are numbered 0 to {Superblock.BackupRootCount - 1}") { BackupRoot = br };
        if (options.ZoneSize is { } zs && (zs < Superblock.Size * 2 || zs % Superblock.Size != 0))
            throw new VolumeException($"zone size {zs}: must be a multiple of {Superblock.Size} bytes, at least {Superblock.Size * 2}");
        if (options.SuperMirror is { } sm && (sm < 0 || sm >= Superblock.MirrorOffsets.Length))
            throw new VolumeException($"superblock copy {sm}: copies are numbered 0 to {Superblock.MirrorOffsets.Length - 1}") { SuperblockCopy = sm };

        var devices = new List<BlockDevice>();
        try
        {
            var allCopies = new List<SuperblockCopy>();
            var perDevice = new List<(BlockDevice Dev, SuperblockCopy Copy)>();
            foreach (string path in paths)
            {
                var dev = BlockDevice.Open(path, options.DirectIo);
                devices.Add(dev);
                if (MetadumpImage.Detect(dev))
                {
                    if (paths.Count > 1)
                        throw new VolumeException($"{path}: a metadata dump (btrfs-image) holds every device of its filesystem: give it alone");
                    var dumped = MetadumpOpen.Open(dev, devices, options, findings);
                    Finish(dumped, options);
                    return dumped;
                }
                if (dev.Length < Superblock.MirrorOffsets[0] + Superblock.Size)
                    throw new VolumeException($"{path}: too small for btrfs ({dev.Length} bytes; the superblock is at 65536)");
                var pick = SuperblockSelection.Pick(dev, options, allCopies);
                perDevice.Add((dev, pick));
            }

            var (fsid, byDevId, seeds) = DeviceSet.Assemble(perDevice);

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
            SuperblockSelection.ReportCopies(vol);
            Finish(vol, options);
            return vol;
        }
        catch
        {
            foreach (var d in devices) d.Dispose();
            throw;
        }
    }

    /// <summary>The steps every volume takes once its superblock is chosen: its fields, the chunk map, the root and
    /// chunk trees, the devices; for a dump or a restored dump, whether its names were sanitized.</summary>
    private static void Finish(BtrfsVolume vol, VolumeOptions options)
    {
        SuperblockSelection.CheckFields(vol);
        ChunkMapLoader.LoadSysChunkArray(vol);
        RootSelection.ChooseChunkTreeAndLoad(vol, options.BackupRoot);
        RootSelection.ChooseRootTree(vol, options.BackupRoot);
        SuperblockSelection.CheckTotalBytes(vol);
        DeviceSet.CheckDevices(vol);
        if (vol.Metadump != null || vol.IsRestoredMetadump) MetadumpOpen.DetectSanitizedNames(vol);
    }

    /// <summary>The mirrored/parity tree-block reader over this volume's block source (its devices, or its dump) and chunk map.</summary>
    public TreeBlockReader Reader { get; }

    /// <summary>Reads the tree block at <paramref name="logical"/>: tries each copy until one has a good checksum,
    /// the right bytenr and this filesystem's fsid. Cached. Never throws for bad data.</summary>
    public TreeBlockRead ReadTreeBlock(ulong logical) => Reader.ReadTreeBlock(logical);
    public (long Hits, long Misses) CacheStats => Reader.CacheStats;
    /// <inheritdoc cref="TreeBlockReader.TryReadRun"/>
    public bool TryReadRun(ulong logical, int count, Span<byte> dest) => Reader.TryReadRun(logical, count, dest);
    /// <inheritdoc cref="TreeBlockReader.VerifiedInPlace"/>
    public TreeBlock? VerifiedInPlace(ulong logical, bool readOk, byte[] buffer, int offset) => Reader.VerifiedInPlace(logical, readOk, buffer, offset);
    /// <inheritdoc cref="TreeBlockReader.ReadInto"/>
    public TreeBlock? ReadInto(ulong logical, byte[] buffer) => Reader.ReadInto(logical, buffer);
    /// <inheritdoc cref="TreeBlockReader.PhysicalOrder"/>
    public ulong PhysicalOrder(ulong logical) => Reader.PhysicalOrder(logical);
    /// <inheritdoc cref="TreeBlockReader.ReadAhead"/>
    public void ReadAhead(ulong logical, int count) => Reader.ReadAhead(logical, count);
    /// <inheritdoc cref="TreeBlockReader.VerifyTreeBlock"/>
    public CopyFailure? VerifyTreeBlock(ulong logical, ReadOnlySpan<byte> block, int copy) => Reader.VerifyTreeBlock(logical, block, copy);
    /// <inheritdoc cref="TreeBlockReader.ReadTreeBlockUncached"/>
    public TreeBlockRead ReadTreeBlockUncached(ulong logical) => Reader.ReadTreeBlockUncached(logical);
    /// <inheritdoc cref="TreeBlockReader.TryReadLogical"/>
    public bool TryReadLogical(ulong logical, Span<byte> dest, int copy, out string? problem) => Reader.TryReadLogical(logical, dest, copy, out problem);

    public void Dispose()
    {
        foreach (var d in Devices) d.Dispose();
    }
}
