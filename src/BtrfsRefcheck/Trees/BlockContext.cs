using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>Where a block sits: its tree, its parent (none for a root block) and what the parent promised.
/// Compact (about 90 bytes), because a scan holds one of these for every block of a level.</summary>
public readonly struct BlockContext : IEquatable<BlockContext>
{
    private readonly ulong _parentBytenr, _parentOwner;
    private readonly ulong _firstObjectId, _firstOffset, _endObjectId, _endOffset;
    private readonly short _parentSlot;
    private readonly byte _expectedLevel, _firstType, _endType, _has; // _has: 1 parent, 2 first key, 4 end key

    public BlockContext(TreeRoot Tree, ulong Bytenr, int ExpectedLevel, ulong? ParentBytenr, int ParentSlot,
        ulong? ParentOwner, BtrfsKey? ExpectedFirstKey, ulong ExpectedGeneration, BtrfsKey? EndKey = null)
    {
        this.Tree = Tree;
        this.Bytenr = Bytenr;
        this.ExpectedGeneration = ExpectedGeneration;
        _expectedLevel = (byte)Math.Clamp(ExpectedLevel, 0, 255);
        _parentSlot = (short)Math.Clamp(ParentSlot, short.MinValue, short.MaxValue);
        byte has = 0;
        if (ParentBytenr is { } pb) { _parentBytenr = pb; _parentOwner = ParentOwner ?? 0; has |= 1; }
        if (ExpectedFirstKey is { } f) { _firstObjectId = f.ObjectId; _firstType = f.Type; _firstOffset = f.Offset; has |= 2; }
        if (EndKey is { } e) { _endObjectId = e.ObjectId; _endType = e.Type; _endOffset = e.Offset; has |= 4; }
        _has = has;
    }

    public TreeRoot Tree { get; }
    public ulong Bytenr { get; }
    public ulong ExpectedGeneration { get; }
    public int ExpectedLevel => _expectedLevel;
    public ulong? ParentBytenr => (_has & 1) != 0 ? _parentBytenr : null;
    public ulong? ParentOwner => (_has & 1) != 0 ? _parentOwner : null;
    public int ParentSlot => _parentSlot;
    public BtrfsKey? ExpectedFirstKey => (_has & 2) != 0 ? new BtrfsKey(_firstObjectId, _firstType, _firstOffset) : null;
    public BtrfsKey? EndKey => (_has & 4) != 0 ? new BtrfsKey(_endObjectId, _endType, _endOffset) : null;

    /// <summary>"[(256 1 0), (300 1 0))": the key range this block covers, as its parent says.</summary>
    public string KeyRange => $"[{(ExpectedFirstKey is { } f ? f.ToString() : "start")}, {(EndKey is { } e ? e.ToString() : "end")})";

    public bool Equals(BlockContext o) => ReferenceEquals(Tree, o.Tree) && Bytenr == o.Bytenr && ExpectedGeneration == o.ExpectedGeneration &&
        _parentBytenr == o._parentBytenr && _parentOwner == o._parentOwner && _firstObjectId == o._firstObjectId && _firstOffset == o._firstOffset &&
        _endObjectId == o._endObjectId && _endOffset == o._endOffset && _parentSlot == o._parentSlot && _expectedLevel == o._expectedLevel &&
        _firstType == o._firstType && _endType == o._endType && _has == o._has;
    public override bool Equals(object? obj) => obj is BlockContext o && Equals(o);
    public override int GetHashCode() => HashCode.Combine(Bytenr, ParentBytenr, ParentSlot);
    public override string ToString() => $"{Tree.Name} block {Bytenr} level {ExpectedLevel}" + (ParentBytenr is { } p ? $" from {p} slot {ParentSlot}" : " (root)");
}
