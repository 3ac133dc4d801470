namespace BtrfsRefcheck.Volume;

/// <summary>The only exception the volume layer throws: the volume cannot be read at all (no path usable,
/// no valid superblock, a path that holds another filesystem, chunk tree unusable). Everything else is a finding.</summary>
public sealed class VolumeException(string message) : Exception(message);
