using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Volume;

/// <summary>Opening a btrfs-image metadata dump as a volume: the dump's index (its damage becomes
/// <see cref="FindingCode.MetadumpClusterInvalid"/>), its superblock (the item at 65536: copy 0 of the device btrfs-image
/// read), and what a dump cannot show, said once (<see cref="BtrfsVolume.NotCheckable"/>). The rest of the opening (chunk
/// map, roots) is the same as a device's: the dump is only another <see cref="IBlockSource"/>.</summary>
internal static class MetadumpOpen
{
    /// <summary>What a metadata dump does not hold, so is not checked (never reported as findings).</summary>
    internal static readonly string[] NotInADump =
    [
        "data checksums and data extents' contents (no data is dumped)",
        "device sizes and what lies past them",
        "superblock mirrors",
        "other copies of mirrored blocks (one copy is dumped)",
        "unallocated space and the free space of data",
    ];

    internal static BtrfsVolume Open(BlockDevice dev, List<BlockDevice> devices, VolumeOptions options, FindingBag findings)
    {
        if (options.SuperMirror is > 0 and var m)
            throw new VolumeException($"{dev.Path}: superblock copy {m}: a metadata dump holds only copy 0") { SuperblockCopy = m };
        var dump = MetadumpImage.Open(dev, Math.Max(16, 8 * Environment.ProcessorCount));
        if (dump.Superblock == null)
            throw new VolumeException($"{dev.Path}: a metadata dump (btrfs-image) without a readable superblock item at 65536" +
                                      (dump.Damage.Count > 0 ? $" ({dump.Damage[0].Problem})" : ""));
        var copy = SuperblockCopy.FromBytes(dev, 0, Superblock.MirrorOffsets[0], dump.Superblock);
        if (!copy.IsValid) throw new VolumeException($"{dev.Path}: the metadata dump's superblock is not usable: {copy.Problem}");
        var vol = BtrfsVolume.ForMetadump(dump, copy, devices, options, findings);
        var super = vol.Super;
        ulong unknownIncompat = super.IncompatFlags & ~Features.KnownIncompat;
        if (unknownIncompat != 0 && !options.AcceptUnknownIncompat)
            throw new VolumeException($"{dev.Path}: the dumped superblock sets incompat feature {string.Join(", ", Features.IncompatNames(unknownIncompat))} (incompat_flags 0x{super.IncompatFlags:x}), which this version does not know; like the kernel, it refuses to read such a filesystem");
        vol.Notes.Add($"{dev.Path} is a btrfs-image metadata dump (format {dump.FormatVersion}: {dump.Clusters} clusters, {dump.Items} items), " +
                      $"read in place: tree blocks by logical address, one copy each, with the crc32c checksums btrfs-image gave them" +
                      (super.CsumType != ChecksumType.Crc32c ? $" (the filesystem's own {Checksum.Name(super.CsumTypeRaw)} checksums are not in the dump)" : "") +
                      $"; the superblock is devid {super.DevItem.DevId}'s (generation {super.Generation})");
        // format 1 holds the data extents too, but nothing here reads data: the first line still holds
        vol.NotCheckable = dump.FormatVersion == 0 ? NotInADump : ["data checksums (the dumped data is not verified)", .. NotInADump[1..]];
        vol.Notes.Add("not checkable from a metadata dump: " + string.Join("; ", vol.NotCheckable));
        foreach (var (offset, problem) in dump.Damage)
            findings.Add(new Finding(FindingCode.MetadumpClusterInvalid, Severity.Error,
                $"metadata dump {dev.Path}: {problem}", Device: dev.Path, Found: $"file offset {offset}"));
        return vol;
    }

    /// <summary>btrfs-image -s replaces every name of DIR_ITEM, DIR_INDEX, INODE_REF and INODE_EXTREF items with random
    /// characters, -ss with a string of the same crc32c where it finds one (and random characters where not). Every
    /// filesystem has the root tree's DIR_ITEM "default" (objectid 6, keyed by the name's hash): named otherwise, the names
    /// were sanitized, and a name hash that does not match says nothing about the original filesystem.</summary>
    internal static void DetectSanitizedNames(BtrfsVolume vol)
    {
        var target = new BtrfsKey(ObjectIds.RootTreeDir, (byte)ItemType.DirItem, RawCrc32C.Update(~1u, "default"u8));
        ulong bytenr = vol.RootTree.Bytenr;
        try
        {
            for (int depth = 0; depth < Header.MaxLevel; depth++)
            {
                var block = vol.ReadTreeBlock(bytenr).Block;
                if (block == null) return;
                var view = block.View;
                if (!view.IsLeaf)
                {
                    if (view.Count == 0) return;
                    bytenr = view.KeyPtr(view.SlotHolding(target)).BlockPtr;
                    continue;
                }
                for (int i = 0; i < view.Count; i++)
                {
                    if (!view.TryGetItem(i, out var key, out var data) || key != target) continue;
                    foreach (var e in new DirItem(data))
                    {
                        if (e.IsTruncated || e.Name.SequenceEqual("default"u8)) return;
                        vol.NamesSanitized = true;
                        vol.Notes.Add($"file names were replaced by btrfs-image -s or -ss (the root tree's DIR_ITEM \"default\" is named \"{System.Text.Encoding.ASCII.GetString(e.Name)}\"): " +
                                      "name hashes of DIR_ITEM and INODE_EXTREF keys are not checked, nor are names and links matched between " +
                                      "INODE_REFs and dir entries, nor subvolume references");
                        return;
                    }
                }
                return;
            }
        }
        catch (BtrfsFormatException) { /* a malformed block: the walk reports it; the names are taken as they are */ }
    }
}
