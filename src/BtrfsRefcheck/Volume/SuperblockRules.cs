using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>The field rules of the kernel's <c>btrfs_validate_super</c> (disk-io.c) on the superblock copy in use, in the
/// kernel's order (docs/findings.md, "Kernel rules", lists each with its code). Magic, checksum, checksum type and the
/// copy's bytenr decide which copy is used (100-103); the rules here are what a copy that passed those can still break.
/// A sector or node size this checker cannot read with stops the check; every other broken rule is one
/// <see cref="FindingCode.SuperblockFieldInvalid"/> (an error where the kernel refuses the mount, a warning where the
/// kernel only warns) and the check goes on.</summary>
internal static class SuperblockRules
{
    /// <summary>The superblock flags the kernel mounts with (BTRFS_SUPER_FLAG_SUPP), plus the in-progress flags of
    /// btrfs-progs' tools (fsid change, btrfstune conversions) that this checker reads as btrfs-progs does.</summary>
    public const ulong KnownFlags = Header.FlagWritten | Header.FlagReloc | Superblock.FlagError | Superblock.FlagSeeding |
        Superblock.FlagMetadump | Superblock.FlagMetadumpV2 | Superblock.FlagChangingFsid | Superblock.FlagChangingFsidV2 |
        Superblock.FlagChangingBgTree | Superblock.FlagChangingDataCsum | Superblock.FlagChangingMetaCsum;

    /// <summary>The smallest sys_chunk_array that holds one chunk: a key and a chunk item with one stripe.</summary>
    public const uint MinSysChunkArraySize = BtrfsKey.Size + ChunkItem.HeaderSize + ChunkItem.StripeSize;

    public static void Check(Superblock s, SuperblockCopy copy, FindingBag findings)
    {
        void Bad(string what, string found, string expected, Severity severity = Severity.Error) =>
            findings.Add(new Finding(FindingCode.SuperblockFieldInvalid, severity, $"superblock {what}",
                Bytenr: (ulong)copy.Offset, Device: copy.Device.Path, Expected: expected, Found: found));

        ulong unknownFlags = s.Flags & ~KnownFlags;
        if (unknownFlags != 0) Bad($"flags 0x{s.Flags:x} has unsupported bits 0x{unknownFlags:x}", $"0x{s.Flags:x}", $"no bits outside 0x{KnownFlags:x}");
        if (s.RootLevel >= Header.MaxLevel) Bad("root_level invalid", s.RootLevel.ToString(), $"< {Header.MaxLevel}");
        if (s.ChunkRootLevel >= Header.MaxLevel) Bad("chunk_root_level invalid", s.ChunkRootLevel.ToString(), $"< {Header.MaxLevel}");
        if (s.LogRootLevel >= Header.MaxLevel) Bad("log_root_level invalid", s.LogRootLevel.ToString(), $"< {Header.MaxLevel}");

        uint sector = s.SectorSize, node = s.NodeSize;
        if (sector < 4096 || sector > 65536 || !uint.IsPow2(sector))
            throw new VolumeException($"superblock sectorsize {sector} is not a power of two between 4096 and 65536; cannot read this filesystem");
        if (node < sector || node > 65536 || !uint.IsPow2(node))
            throw new VolumeException($"superblock nodesize {node} is not a power of two between sectorsize {sector} and 65536; cannot read this filesystem");
        if (s.LeafSize != node) Bad($"leafsize {s.LeafSize} differs from nodesize {node}", s.LeafSize.ToString(), node.ToString());

        if (s.Root % sector != 0) Bad("root invalid", s.Root.ToString(), $"aligned to {sector}");
        if (s.ChunkRoot % sector != 0) Bad("chunk_root invalid", s.ChunkRoot.ToString(), $"aligned to {sector}");
        if (s.LogRoot % sector != 0) Bad("log_root invalid", s.LogRoot.ToString(), $"aligned to {sector}");

        // The fsids themselves assemble the devices (a device of another filesystem is never joined).
        var devFsid = s.DevItem.Fsid;
        bool fsidChanging = (s.Flags & (Superblock.FlagChangingFsid | Superblock.FlagChangingFsidV2)) != 0;
        if (devFsid != s.MetadataFsid && !(fsidChanging && devFsid == s.Fsid))
            Bad("dev_item fsid does not match the metadata fsid", devFsid.ToString(), s.MetadataFsid.ToString());

        if ((s.CompatRoFlags & Features.CompatRoBlockGroupTree) != 0 && (s.Flags & Superblock.FlagChangingBgTree) == 0 &&
            ((s.CompatRoFlags & Features.CompatRoFreeSpaceTree) == 0 || (s.IncompatFlags & Features.IncompatNoHoles) == 0))
            Bad("feature BLOCK_GROUP_TREE without FREE_SPACE_TREE and NO_HOLES",
                string.Join("|", [.. Features.CompatRoNames(s.CompatRoFlags), .. Features.IncompatNames(s.IncompatFlags)]),
                "BLOCK_GROUP_TREE with FREE_SPACE_TREE and NO_HOLES");

        if (s.TotalBytes == 0) Bad("total_bytes is 0", "0", "> 0");
        if (s.BytesUsed < 6UL * node) Bad($"bytes_used {s.BytesUsed} is too small", s.BytesUsed.ToString(), $">= 6 * nodesize = {6UL * node}");
        if (!uint.IsPow2(s.StripeSize)) Bad($"stripesize {s.StripeSize} is not a power of two", s.StripeSize.ToString(), "a power of two (4096)");
        if (s.NumDevices > 1UL << 31) Bad($"suspicious num_devices {s.NumDevices}", s.NumDevices.ToString(), $"<= {1UL << 31}", Severity.Warning);
        if (s.NumDevices == 0) Bad("num_devices invalid", "0", ">= 1");

        if (s.SysChunkArraySize > Superblock.SysChunkArrayMax)
            Bad("sys_chunk_array_size invalid", s.SysChunkArraySize.ToString(), $"<= {Superblock.SysChunkArrayMax}");
        else if (s.SysChunkArraySize < MinSysChunkArraySize)
            Bad("sys_chunk_array_size too small for one chunk", s.SysChunkArraySize.ToString(), $">= {MinSysChunkArraySize}");

        if (s.Generation < s.ChunkRootGeneration)
            Bad($"generation {s.Generation} is older than chunk_root_generation {s.ChunkRootGeneration}", s.ChunkRootGeneration.ToString(),
                $"<= {s.Generation}", Severity.Warning);
        if (s.Generation < s.CacheGeneration && s.CacheGeneration != ulong.MaxValue)
            Bad($"generation {s.Generation} is older than cache_generation {s.CacheGeneration}", s.CacheGeneration.ToString(),
                $"<= {s.Generation}", Severity.Warning);
    }

    /// <summary>btrfs_read_chunk_tree's check once the DEV_ITEMs are read: total_bytes covers the writable devices
    /// (fs_devices->total_rw_bytes: this filesystem's DEV_ITEMs, not a seed's, not the dev-replace target, not a device
    /// that is missing). The kernel fails the mount ("super_total_bytes ... mismatch with fs_devices total_rw_bytes");
    /// btrfs check 6.19 says "super total bytes ... smaller than real device(s) size" (it counts seed devices too).</summary>
    public static void CheckTotalBytes(Superblock s, SuperblockCopy copy, IReadOnlyList<DevItemInfo> devItems, Func<ulong, bool> present,
        FindingBag findings)
    {
        if (s.TotalBytes == 0) return; // "total_bytes is 0" (Check)
        ulong devices = 0;
        foreach (var d in devItems)
            if (d.DevId != 0 && d.Fsid == s.MetadataFsid && present(d.DevId))
                devices = devices + d.TotalBytes < devices ? ulong.MaxValue : devices + d.TotalBytes;
        if (s.TotalBytes < devices)
            findings.Add(new Finding(FindingCode.SuperblockFieldInvalid, Severity.Error,
                $"superblock total_bytes {s.TotalBytes} is smaller than its devices' total_bytes {devices} (the DEV_ITEMs)",
                Bytenr: (ulong)copy.Offset, Device: copy.Device.Path, Expected: $">= {devices}", Found: s.TotalBytes.ToString()));
    }
}
