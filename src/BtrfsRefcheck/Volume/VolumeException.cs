namespace BtrfsRefcheck.Volume;

/// <summary>The only exception the volume layer throws: the volume cannot be read at all (no path usable,
/// no valid superblock, a path that holds another filesystem, chunk tree unusable). Everything else is a finding.</summary>
public sealed class VolumeException(string message) : Exception(message)
{
    /// <summary>The backup root the problem is about, when one was asked for (the caller may name its own option).</summary>
    public int? BackupRoot { get; init; }

    /// <summary>The superblock copy the problem is about, when one was asked for.</summary>
    public int? SuperblockCopy { get; init; }
}
