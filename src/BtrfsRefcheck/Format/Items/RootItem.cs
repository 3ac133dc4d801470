namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a ROOT_ITEM (439 bytes; items written by old kernels stop at 239 bytes, before generation_v2).</summary>
public readonly ref struct RootItem
{
    public const int InodeSize = 160;
    public const int LegacySize = GenerationV2At;  // 239
    public const int FullSize = ReservedAt + 64;   // 439
    private const int GenerationAt = InodeSize;
    private const int RootDirIdAt = GenerationAt + 8;
    private const int BytenrAt = RootDirIdAt + 8;
    private const int ByteLimitAt = BytenrAt + 8;
    private const int BytesUsedAt = ByteLimitAt + 8;
    private const int LastSnapshotAt = BytesUsedAt + 8;
    private const int FlagsAt = LastSnapshotAt + 8;
    private const int RefsAt = FlagsAt + 8;
    private const int DropProgressAt = RefsAt + 4;
    private const int DropLevelAt = DropProgressAt + BtrfsKey.Size;
    private const int LevelAt = DropLevelAt + 1;
    private const int GenerationV2At = LevelAt + 1;
    private const int UuidAt = GenerationV2At + 8;
    private const int ParentUuidAt = UuidAt + 16;
    private const int ReceivedUuidAt = ParentUuidAt + 16;
    private const int CtransidAt = ReceivedUuidAt + 16;
    private const int OtransidAt = CtransidAt + 8;
    private const int StransidAt = OtransidAt + 8;
    private const int RtransidAt = StransidAt + 8;
    private const int CtimeAt = RtransidAt + 8;
    private const int OtimeAt = CtimeAt + 12;
    private const int StimeAt = OtimeAt + 12;
    private const int RtimeAt = StimeAt + 12;
    private const int ReservedAt = RtimeAt + 12;

    public const ulong FlagSubvolReadOnly = 1UL << 0;
    public const ulong FlagSubvolDead = 1UL << 48;

    private readonly ReadOnlySpan<byte> _d;

    public RootItem(ReadOnlySpan<byte> d)
    {
        if (d.Length < LegacySize) Throw.Truncated("root item", LegacySize, d.Length);
        _d = d;
    }

    public bool HasV2 => _d.Length >= FullSize;
    public ReadOnlySpan<byte> Inode => _d[..InodeSize];
    public ulong Generation => Le.U64(_d, GenerationAt);
    public ulong RootDirId => Le.U64(_d, RootDirIdAt);
    public ulong Bytenr => Le.U64(_d, BytenrAt);
    public ulong ByteLimit => Le.U64(_d, ByteLimitAt);
    public ulong BytesUsed => Le.U64(_d, BytesUsedAt);
    public ulong LastSnapshot => Le.U64(_d, LastSnapshotAt);
    public ulong Flags => Le.U64(_d, FlagsAt);
    public uint Refs => Le.U32(_d, RefsAt);
    public BtrfsKey DropProgress => BtrfsKey.Read(_d[DropProgressAt..]);
    public byte DropLevel => _d[DropLevelAt];
    public byte Level => _d[LevelAt];
    public ulong GenerationV2 => HasV2 ? Le.U64(_d, GenerationV2At) : 0;
    public Guid Uuid => HasV2 ? Uuids.Read(_d.Slice(UuidAt, 16)) : Guid.Empty;
    public Guid ParentUuid => HasV2 ? Uuids.Read(_d.Slice(ParentUuidAt, 16)) : Guid.Empty;
    public Guid ReceivedUuid => HasV2 ? Uuids.Read(_d.Slice(ReceivedUuidAt, 16)) : Guid.Empty;
    public ulong Ctransid => HasV2 ? Le.U64(_d, CtransidAt) : 0;
    public ulong Otransid => HasV2 ? Le.U64(_d, OtransidAt) : 0;
    public ulong Stransid => HasV2 ? Le.U64(_d, StransidAt) : 0;
    public ulong Rtransid => HasV2 ? Le.U64(_d, RtransidAt) : 0;
    public Timespec Ctime => HasV2 ? new(_d.Slice(CtimeAt, 12)) : default;
    public Timespec Otime => HasV2 ? new(_d.Slice(OtimeAt, 12)) : default;
    public Timespec Stime => HasV2 ? new(_d.Slice(StimeAt, 12)) : default;
    public Timespec Rtime => HasV2 ? new(_d.Slice(RtimeAt, 12)) : default;
}

/// <summary>btrfs_timespec: u64 seconds, u32 nanoseconds.</summary>
public readonly record struct Timespec(ulong Seconds, uint Nanoseconds)
{
    public const int Size = 12;
    public Timespec(ReadOnlySpan<byte> d) : this(Le.U64(d, 0), Le.U32(d, 8)) { }
    public override string ToString() => $"{Seconds}.{Nanoseconds}";
}
