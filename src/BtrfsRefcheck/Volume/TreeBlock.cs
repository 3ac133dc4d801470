using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>A tree block whose checksum, bytenr and fsid were verified on the copy it came from. It may be a window
/// into a larger read buffer that is reused afterwards (the parallel scanner does this): do not keep it past the
/// call that received it; <see cref="Data"/> gives a standalone copy when needed.</summary>
public sealed class TreeBlock
{
    private readonly byte[] _buffer;
    private readonly int _offset;
    private readonly int _length;

    public TreeBlock(ulong logical, byte[] data, int copy) : this(logical, data, 0, data.Length, copy) { }

    public TreeBlock(ulong logical, byte[] buffer, int offset, int length, int copy)
    {
        Logical = logical;
        _buffer = buffer;
        _offset = offset;
        _length = length;
        Copy = copy;
    }

    public ulong Logical { get; }

    /// <summary>The copy (mirror number - 1) the verified bytes were read from.</summary>
    public int Copy { get; }

    public ReadOnlySpan<byte> Bytes => _buffer.AsSpan(_offset, _length);

    /// <summary>The block's bytes as an array of exactly nodesize bytes (a copy when this block is a window).</summary>
    public byte[] Data => _offset == 0 && _length == _buffer.Length ? _buffer : Bytes.ToArray();

    public BlockView View => new(Bytes);
    public int Level => _buffer[_offset + Header.LevelAt];
    public ulong Owner => new Header(Bytes).Owner;
    public ulong Generation => new Header(Bytes).Generation;
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
