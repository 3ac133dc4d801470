namespace BtrfsRefcheck.Format.Items;

/// <summary>View of the DEV_REPLACE item, (0, DEV_REPLACE, 0) in the device tree (72 bytes).</summary>
public readonly ref struct DevReplaceItem
{
    public const int Size = NumUncorrectableReadErrorsAt + 8; // 72
    private const int SrcDevIdAt = 0;
    private const int CursorLeftAt = SrcDevIdAt + 8;
    private const int CursorRightAt = CursorLeftAt + 8;
    private const int ContReadingFromSrcdevModeAt = CursorRightAt + 8;
    private const int ReplaceStateAt = ContReadingFromSrcdevModeAt + 8;
    private const int TimeStartedAt = ReplaceStateAt + 8;
    private const int TimeStoppedAt = TimeStartedAt + 8;
    private const int NumWriteErrorsAt = TimeStoppedAt + 8;
    private const int NumUncorrectableReadErrorsAt = NumWriteErrorsAt + 8;

    private readonly ReadOnlySpan<byte> _d;

    public DevReplaceItem(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("dev replace item", Size, d.Length);
        _d = d;
    }

    public ulong SrcDevId => Le.U64(_d, SrcDevIdAt);
    public ulong CursorLeft => Le.U64(_d, CursorLeftAt);
    public ulong CursorRight => Le.U64(_d, CursorRightAt);
    public ulong ContReadingFromSrcdevMode => Le.U64(_d, ContReadingFromSrcdevModeAt);
    public ulong ReplaceState => Le.U64(_d, ReplaceStateAt);
    public ulong TimeStarted => Le.U64(_d, TimeStartedAt);
    public ulong TimeStopped => Le.U64(_d, TimeStoppedAt);
    public ulong NumWriteErrors => Le.U64(_d, NumWriteErrorsAt);
    public ulong NumUncorrectableReadErrors => Le.U64(_d, NumUncorrectableReadErrorsAt);

    /// <summary>BTRFS_IOCTL_DEV_REPLACE_STATE_* names.</summary>
    public static string StateName(ulong state) => state switch
    {
        0 => "NEVER_STARTED",
        1 => "STARTED",
        2 => "FINISHED",
        3 => "CANCELED",
        4 => "SUSPENDED",
        _ => $"UNKNOWN.{state}",
    };

    /// <summary>cont_reading_from_srcdev_mode names.</summary>
    public static string ModeName(ulong mode) => mode switch
    {
        0 => "ALWAYS",
        1 => "AVOID",
        _ => $"UNKNOWN.{mode}",
    };
}
