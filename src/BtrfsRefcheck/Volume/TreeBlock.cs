using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>A tree block whose checksum, bytenr and fsid were verified on the copy it came from.</summary>
public sealed class TreeBlock(ulong logical, byte[] data, int copy)
{
    public ulong Logical { get; } = logical;
    public byte[] Data { get; } = data;

    /// <summary>The copy (mirror number - 1) the verified bytes were read from.</summary>
    public int Copy { get; } = copy;

    public BlockView View => new(Data);
    public int Level => Data[Header.LevelAt];
    public ulong Owner => new Header(Data).Owner;
    public ulong Generation => new Header(Data).Generation;
}

/// <summary>Why one copy of a tree block was rejected.</summary>
public sealed record CopyFailure(int Copy, FindingCode Code, string Reason, ulong? DevId = null, ulong? Physical = null, bool DeviceMissing = false);

/// <summary>Result of reading a tree block: the first good copy (or null) and every copy that failed before it.</summary>
public sealed record TreeBlockRead(ulong Logical, TreeBlock? Block, IReadOnlyList<CopyFailure> Failures)
{
    public bool Ok => Block != null;

    /// <summary>"copy 0: checksum mismatch ...; copy 1: ..."</summary>
    public string Describe() => string.Join("; ", Failures.Select(f => $"copy {f.Copy}: {f.Reason}"));
}
