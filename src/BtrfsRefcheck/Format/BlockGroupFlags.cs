namespace BtrfsRefcheck.Format;

/// <summary>Block group / chunk type bits: allocation type and RAID profile.</summary>
[Flags]
public enum BlockGroupFlags : ulong
{
    None = 0,
    Data = 1UL << 0,
    System = 1UL << 1,
    Metadata = 1UL << 2,
    Raid0 = 1UL << 3,
    Raid1 = 1UL << 4,
    Dup = 1UL << 5,
    Raid10 = 1UL << 6,
    Raid5 = 1UL << 7,
    Raid6 = 1UL << 8,
    Raid1C3 = 1UL << 9,
    Raid1C4 = 1UL << 10,
    /// <summary>BTRFS_BLOCK_GROUP_REMAPPED (REMAP_TREE, experimental): the chunk's addresses are translated through the
    /// remap tree; a fully remapped chunk has no stripes of its own.</summary>
    Remapped = 1UL << 11,
    TypeMask = Data | System | Metadata,
    ProfileMask = Raid0 | Raid1 | Dup | Raid10 | Raid5 | Raid6 | Raid1C3 | Raid1C4,
}

public enum RaidProfile { Single, Dup, Raid0, Raid1, Raid1C3, Raid1C4, Raid10, Raid5, Raid6 }

public static class BlockGroupFlagsExtensions
{
    /// <summary>The profile encoded in the flags; null when more than one profile bit is set.</summary>
    public static RaidProfile? Profile(this BlockGroupFlags f) => (f & BlockGroupFlags.ProfileMask) switch
    {
        0 => RaidProfile.Single,
        BlockGroupFlags.Dup => RaidProfile.Dup,
        BlockGroupFlags.Raid0 => RaidProfile.Raid0,
        BlockGroupFlags.Raid1 => RaidProfile.Raid1,
        BlockGroupFlags.Raid1C3 => RaidProfile.Raid1C3,
        BlockGroupFlags.Raid1C4 => RaidProfile.Raid1C4,
        BlockGroupFlags.Raid10 => RaidProfile.Raid10,
        BlockGroupFlags.Raid5 => RaidProfile.Raid5,
        BlockGroupFlags.Raid6 => RaidProfile.Raid6,
        _ => null,
    };

    /// <summary>"DATA|RAID1", "METADATA|DUP", "SYSTEM" (single prints no profile), as btrfs-progs does.</summary>
    public static string Describe(this BlockGroupFlags f)
    {
        var parts = new List<string>();
        if ((f & BlockGroupFlags.Data) != 0) parts.Add("DATA");
        if ((f & BlockGroupFlags.System) != 0) parts.Add("SYSTEM");
        if ((f & BlockGroupFlags.Metadata) != 0) parts.Add("METADATA");
        if ((f & BlockGroupFlags.Raid0) != 0) parts.Add("RAID0");
        if ((f & BlockGroupFlags.Raid1) != 0) parts.Add("RAID1");
        if ((f & BlockGroupFlags.Dup) != 0) parts.Add("DUP");
        if ((f & BlockGroupFlags.Raid10) != 0) parts.Add("RAID10");
        if ((f & BlockGroupFlags.Raid5) != 0) parts.Add("RAID5");
        if ((f & BlockGroupFlags.Raid6) != 0) parts.Add("RAID6");
        if ((f & BlockGroupFlags.Raid1C3) != 0) parts.Add("RAID1C3");
        if ((f & BlockGroupFlags.Raid1C4) != 0) parts.Add("RAID1C4");
        ulong unknown = (ulong)f & ~(ulong)(BlockGroupFlags.TypeMask | BlockGroupFlags.ProfileMask);
        if (unknown != 0) parts.Add($"0x{unknown:x}");
        return parts.Count == 0 ? "0" : string.Join('|', parts);
    }
}
