using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>Superblock selection: on each device, the copy to use (the one asked for, or the valid copy with the
/// highest generation); then what the other copies and the chosen copy's fields say.</summary>
internal static class SuperblockSelection
{
    /// <summary>The copy of <paramref name="dev"/> to use; every copy read is added to <paramref name="allCopies"/>.
    /// Throws <see cref="VolumeException"/> when none is usable.</summary>
    internal static SuperblockCopy Pick(BlockDevice dev, VolumeOptions options, List<SuperblockCopy> allCopies)
    {
        string path = dev.Path;
        var copies = SuperblockCopy.ReadAll(dev, options.ZoneSize ?? ZonedDevice.ZoneSizeOf(dev));
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
        return pick;
    }

    /// <summary>Every copy that is not the one in use: never written, invalid (by what), or another generation.</summary>
    internal static void ReportCopies(BtrfsVolume vol)
    {
        foreach (var c in vol.AllCopies)
        {
            // The kernel writes a mirror only where it fits inside the device's btrfs size.
            var owner = c.Superblock is { MagicMatches: true } ? c.Superblock : vol.Super;
            ulong devSize = c.Device == vol.ChosenCopy.Device ? vol.Super.DevItem.TotalBytes : owner.DevItem.TotalBytes;
            if (c.Mirror > 0 && (ulong)c.Offset + Superblock.Size > devSize) continue;
            // Zoned filesystems keep their superblock mirrors in log zones, not at the fixed offsets (only copy 0 of a
            // zone-emulating image file or conventional zone sits at 64 KiB): nothing is expected at 64 MiB / 256 GiB.
            if (c.Mirror > 0 && vol.IsZoned && !c.IsValid) continue;
            if (c.NeverWritten && c.Mirror > 0)
            {
                vol.Findings.Add(new Finding(FindingCode.SuperblockCopyNeverWritten, Severity.Info,
                    $"superblock copy {c.Mirror} at {c.Offset} was never written (all zeros): " + (vol.IsRestoredMetadump
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
                vol.Findings.Add(new Finding(code, Severity.Error, $"superblock copy {c.Mirror} at {c.Offset}: {c.Problem}",
                    Bytenr: (ulong)c.Offset, Device: c.Device.Path, Mirror: c.Mirror));
            }
            else if (c.Superblock!.Fsid == vol.Super.Fsid && c.Superblock.Generation != vol.Super.Generation)
            {
                vol.Findings.Add(new Finding(FindingCode.SuperblockGenerationMismatch, Severity.Warning,
                    $"superblock copy {c.Mirror} has generation {c.Superblock.Generation}, the copy in use has {vol.Super.Generation}",
                    Bytenr: (ulong)c.Offset, Device: c.Device.Path, Mirror: c.Mirror,
                    Expected: vol.Super.Generation.ToString(), Found: c.Superblock.Generation.ToString()));
            }
        }
    }

    /// <summary>The chosen superblock's fields: btrfs_validate_super's rules (<see cref="SuperblockRules"/>).</summary>
    internal static void CheckFields(BtrfsVolume vol) => SuperblockRules.Check(vol.Super, vol.ChosenCopy, vol.Findings);

    /// <summary>The chosen superblock's total_bytes against the DEV_ITEMs of the chunk tree just loaded.</summary>
    internal static void CheckTotalBytes(BtrfsVolume vol) =>
        SuperblockRules.CheckTotalBytes(vol.Super, vol.ChosenCopy, vol.DevItems, vol.DevicesById.ContainsKey, vol.Findings);
}
