using System.Text;

namespace BtrfsRefcheck.Format;

/// <summary>View of a 4096-byte superblock. Holds its own copy of the 4 KiB it was read from.</summary>
public sealed class Superblock
{
    public const int Size = 4096;
    public const ulong MagicValue = 0x4D5F53665248425FUL; // "_BHRfS_M"
    public const int LabelSize = 256;
    public const int SysChunkArrayMax = 2048;
    public const int BackupRootCount = 4;

    // Offsets, chained as in struct btrfs_super_block.
    public const int CsumAt = 0x00;
    public const int FsidAt = CsumAt + 32;
    public const int BytenrAt = FsidAt + 16;
    public const int FlagsAt = BytenrAt + 8;
    public const int MagicAt = FlagsAt + 8;
    public const int GenerationAt = MagicAt + 8;
    public const int RootAt = GenerationAt + 8;
    public const int ChunkRootAt = RootAt + 8;
    public const int LogRootAt = ChunkRootAt + 8;
    public const int LogRootTransidAt = LogRootAt + 8;
    public const int TotalBytesAt = LogRootTransidAt + 8;
    public const int BytesUsedAt = TotalBytesAt + 8;
    public const int RootDirObjectIdAt = BytesUsedAt + 8;
    public const int NumDevicesAt = RootDirObjectIdAt + 8;
    public const int SectorSizeAt = NumDevicesAt + 8;
    public const int NodeSizeAt = SectorSizeAt + 4;
    public const int LeafSizeAt = NodeSizeAt + 4;
    public const int StripeSizeAt = LeafSizeAt + 4;
    public const int SysChunkArraySizeAt = StripeSizeAt + 4;
    public const int ChunkRootGenerationAt = SysChunkArraySizeAt + 4;
    public const int CompatFlagsAt = ChunkRootGenerationAt + 8;
    public const int CompatRoFlagsAt = CompatFlagsAt + 8;
    public const int IncompatFlagsAt = CompatRoFlagsAt + 8;
    public const int CsumTypeAt = IncompatFlagsAt + 8;
    public const int RootLevelAt = CsumTypeAt + 2;
    public const int ChunkRootLevelAt = RootLevelAt + 1;
    public const int LogRootLevelAt = ChunkRootLevelAt + 1;
    public const int DevItemAt = LogRootLevelAt + 1;
    public const int LabelAt = DevItemAt + DevItem.Size;
    public const int CacheGenerationAt = LabelAt + LabelSize;
    public const int UuidTreeGenerationAt = CacheGenerationAt + 8;
    public const int MetadataUuidAt = UuidTreeGenerationAt + 8;
    public const int NrGlobalRootsAt = MetadataUuidAt + 16;
    public const int ReservedAt = NrGlobalRootsAt + 8;
    public const int SysChunkArrayAt = ReservedAt + 27 * 8;
    public const int SuperRootsAt = SysChunkArrayAt + SysChunkArrayMax;
    public const int PaddingAt = SuperRootsAt + BackupRootCount * Format.BackupRoot.Size;

    /// <summary>Byte offsets of the primary superblock and its mirrors on every device.</summary>
    public static readonly long[] MirrorOffsets = [64L * 1024, 64L * 1024 * 1024, 256L * 1024 * 1024 * 1024];

    // Superblock flags.
    public const ulong FlagError = 1UL << 2;
    public const ulong FlagSeeding = 1UL << 32;
    public const ulong FlagMetadump = 1UL << 33;
    public const ulong FlagMetadumpV2 = 1UL << 34;
    public const ulong FlagChangingFsid = 1UL << 35;
    public const ulong FlagChangingFsidV2 = 1UL << 36;
    /// <summary>btrfstune --convert-to-block-group-tree is part-way: block group items in both trees.</summary>
    public const ulong FlagChangingBgTree = 1UL << 38;
    /// <summary>btrfstune --csum is part-way through data checksums: new ones under CSUM_CHANGE in the csum tree.</summary>
    public const ulong FlagChangingDataCsum = 1UL << 39;
    /// <summary>btrfstune --csum is part-way through tree blocks: each carries the old or the new checksum type.</summary>
    public const ulong FlagChangingMetaCsum = 1UL << 40;

    private readonly byte[] _b;

    public Superblock(byte[] bytes)
    {
        if (bytes.Length != Size) Throw.Truncated("superblock", Size, bytes.Length);
        _b = bytes;
    }

    public ReadOnlySpan<byte> Bytes => _b;
    public ReadOnlySpan<byte> Csum => Bytes.Slice(CsumAt, 32);
    public ReadOnlySpan<byte> FsidBytes => Bytes.Slice(FsidAt, 16);
    public Guid Fsid => Uuids.Read(FsidBytes);
    public ulong Bytenr => Le.U64(_b, BytenrAt);
    public ulong Flags => Le.U64(_b, FlagsAt);
    public ulong Magic => Le.U64(_b, MagicAt);
    public bool MagicMatches => Magic == MagicValue;
    public ulong Generation => Le.U64(_b, GenerationAt);
    public ulong Root => Le.U64(_b, RootAt);
    public ulong ChunkRoot => Le.U64(_b, ChunkRootAt);
    public ulong LogRoot => Le.U64(_b, LogRootAt);
    public ulong LogRootTransid => Le.U64(_b, LogRootTransidAt);
    public ulong TotalBytes => Le.U64(_b, TotalBytesAt);
    public ulong BytesUsed => Le.U64(_b, BytesUsedAt);
    public ulong RootDirObjectId => Le.U64(_b, RootDirObjectIdAt);
    public ulong NumDevices => Le.U64(_b, NumDevicesAt);
    public uint SectorSize => Le.U32(_b, SectorSizeAt);
    public uint NodeSize => Le.U32(_b, NodeSizeAt);
    public uint LeafSize => Le.U32(_b, LeafSizeAt);
    public uint StripeSize => Le.U32(_b, StripeSizeAt);
    public uint SysChunkArraySize => Le.U32(_b, SysChunkArraySizeAt);
    public ulong ChunkRootGeneration => Le.U64(_b, ChunkRootGenerationAt);
    public ulong CompatFlags => Le.U64(_b, CompatFlagsAt);
    public ulong CompatRoFlags => Le.U64(_b, CompatRoFlagsAt);
    public ulong IncompatFlags => Le.U64(_b, IncompatFlagsAt);
    public ushort CsumTypeRaw => Le.U16(_b, CsumTypeAt);
    public ChecksumType CsumType => (ChecksumType)CsumTypeRaw;
    public byte RootLevel => _b[RootLevelAt];
    public byte ChunkRootLevel => _b[ChunkRootLevelAt];
    public byte LogRootLevel => _b[LogRootLevelAt];
    public DevItem DevItem => new(Bytes.Slice(DevItemAt, DevItem.Size));
    public string Label
    {
        get
        {
            var l = Bytes.Slice(LabelAt, LabelSize);
            int z = l.IndexOf((byte)0);
            return Encoding.UTF8.GetString(z < 0 ? l : l[..z]);
        }
    }
    public ulong CacheGeneration => Le.U64(_b, CacheGenerationAt);
    public ulong UuidTreeGeneration => Le.U64(_b, UuidTreeGenerationAt);
    public ReadOnlySpan<byte> MetadataUuidBytes => Bytes.Slice(MetadataUuidAt, 16);
    public ulong NrGlobalRoots => Le.U64(_b, NrGlobalRootsAt);
    public bool HasMetadataUuid => (IncompatFlags & Features.IncompatMetadataUuid) != 0;

    /// <summary>The fsid that tree block headers carry: metadata_uuid when that feature is on, else fsid.</summary>
    public Guid MetadataFsid => HasMetadataUuid ? Uuids.Read(MetadataUuidBytes) : Fsid;
    public ReadOnlySpan<byte> MetadataFsidBytes => HasMetadataUuid ? MetadataUuidBytes : FsidBytes;

    /// <summary>The raw sys_chunk_array, capped at its 2048-byte field whatever the size field says.</summary>
    public ReadOnlySpan<byte> SysChunkArray => Bytes.Slice(SysChunkArrayAt, (int)Math.Min(SysChunkArraySize, SysChunkArrayMax));

    public BackupRoot GetBackupRoot(int i)
    {
        if ((uint)i >= BackupRootCount) throw new ArgumentOutOfRangeException(nameof(i));
        return new BackupRoot(Bytes.Slice(SuperRootsAt + i * Format.BackupRoot.Size, Format.BackupRoot.Size));
    }

    public bool IsSkinnyMetadata => (IncompatFlags & Features.IncompatSkinnyMetadata) != 0;
    public bool IsMixed => (IncompatFlags & Features.IncompatMixedGroups) != 0;

    /// <summary>True when the stored checksum matches the contents (false for an unknown checksum type).</summary>
    public bool ChecksumValid => Checksum.IsKnown(CsumTypeRaw) && Checksum.Verify(CsumType, Bytes);
}

/// <summary>View of a dev_item (98 bytes), in the superblock and as DEV_ITEM in the chunk tree.</summary>
public readonly ref struct DevItem
{
    public const int Size = FsidAt + 16; // 98
    public const int DevIdAt = 0;
    public const int TotalBytesAt = DevIdAt + 8;
    public const int BytesUsedAt = TotalBytesAt + 8;
    public const int IoAlignAt = BytesUsedAt + 8;
    public const int IoWidthAt = IoAlignAt + 4;
    public const int SectorSizeAt = IoWidthAt + 4;
    public const int TypeAt = SectorSizeAt + 4;
    public const int GenerationAt = TypeAt + 8;
    public const int StartOffsetAt = GenerationAt + 8;
    public const int DevGroupAt = StartOffsetAt + 8;
    public const int SeekSpeedAt = DevGroupAt + 4;
    public const int BandwidthAt = SeekSpeedAt + 1;
    public const int UuidAt = BandwidthAt + 1;
    public const int FsidAt = UuidAt + 16;

    private readonly ReadOnlySpan<byte> _d;
    public DevItem(ReadOnlySpan<byte> d) { if (d.Length < Size) Throw.Truncated("dev item", Size, d.Length); _d = d; }
    public ulong DevId => Le.U64(_d, DevIdAt);
    public ulong TotalBytes => Le.U64(_d, TotalBytesAt);
    public ulong BytesUsed => Le.U64(_d, BytesUsedAt);
    public uint IoAlign => Le.U32(_d, IoAlignAt);
    public uint IoWidth => Le.U32(_d, IoWidthAt);
    public uint SectorSize => Le.U32(_d, SectorSizeAt);
    public ulong Type => Le.U64(_d, TypeAt);
    public ulong Generation => Le.U64(_d, GenerationAt);
    public ulong StartOffset => Le.U64(_d, StartOffsetAt);
    public uint DevGroup => Le.U32(_d, DevGroupAt);
    public byte SeekSpeed => _d[SeekSpeedAt];
    public byte Bandwidth => _d[BandwidthAt];
    public Guid Uuid => Uuids.Read(_d.Slice(UuidAt, 16));
    public Guid Fsid => Uuids.Read(_d.Slice(FsidAt, 16));
}

/// <summary>View of one of the superblock's four backup roots (168 bytes).</summary>
public readonly ref struct BackupRoot
{
    public const int Size = 168;
    private const int TreeRootAt = 0, TreeRootGenAt = 8, ChunkRootAt = 16, ChunkRootGenAt = 24,
        ExtentRootAt = 32, ExtentRootGenAt = 40, FsRootAt = 48, FsRootGenAt = 56, DevRootAt = 64, DevRootGenAt = 72,
        CsumRootAt = 80, CsumRootGenAt = 88, TotalBytesAt = 96, BytesUsedAt = 104, NumDevicesAt = 112,
        UnusedAt = 120, TreeRootLevelAt = UnusedAt + 32, ChunkRootLevelAt = TreeRootLevelAt + 1,
        ExtentRootLevelAt = ChunkRootLevelAt + 1, FsRootLevelAt = ExtentRootLevelAt + 1,
        DevRootLevelAt = FsRootLevelAt + 1, CsumRootLevelAt = DevRootLevelAt + 1;

    private readonly ReadOnlySpan<byte> _d;
    public BackupRoot(ReadOnlySpan<byte> d) { if (d.Length < Size) Throw.Truncated("backup root", Size, d.Length); _d = d; }
    public ulong TreeRoot => Le.U64(_d, TreeRootAt);
    public ulong TreeRootGen => Le.U64(_d, TreeRootGenAt);
    public ulong ChunkRoot => Le.U64(_d, ChunkRootAt);
    public ulong ChunkRootGen => Le.U64(_d, ChunkRootGenAt);
    public ulong ExtentRoot => Le.U64(_d, ExtentRootAt);
    public ulong ExtentRootGen => Le.U64(_d, ExtentRootGenAt);
    public ulong FsRoot => Le.U64(_d, FsRootAt);
    public ulong FsRootGen => Le.U64(_d, FsRootGenAt);
    public ulong DevRoot => Le.U64(_d, DevRootAt);
    public ulong DevRootGen => Le.U64(_d, DevRootGenAt);
    public ulong CsumRoot => Le.U64(_d, CsumRootAt);
    public ulong CsumRootGen => Le.U64(_d, CsumRootGenAt);
    public ulong TotalBytes => Le.U64(_d, TotalBytesAt);
    public ulong BytesUsed => Le.U64(_d, BytesUsedAt);
    public ulong NumDevices => Le.U64(_d, NumDevicesAt);
    public byte TreeRootLevel => _d[TreeRootLevelAt];
    public byte ChunkRootLevel => _d[ChunkRootLevelAt];
    public byte ExtentRootLevel => _d[ExtentRootLevelAt];
    public byte FsRootLevel => _d[FsRootLevelAt];
    public byte DevRootLevel => _d[DevRootLevelAt];
    public byte CsumRootLevel => _d[CsumRootLevelAt];
}
