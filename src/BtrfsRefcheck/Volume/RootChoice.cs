namespace BtrfsRefcheck.Volume;

/// <summary>A tree root as used: address, level, generation, and which backup root slot it came from (null: the superblock's own).</summary>
public sealed record RootChoice(ulong Bytenr, int Level, ulong Generation, int? BackupIndex, ulong BytesUsed = 0);
