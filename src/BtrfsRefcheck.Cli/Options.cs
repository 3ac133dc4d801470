using CommandLine;

namespace BtrfsRefcheck.Cli;

public abstract class CommonOptions
{
    [Value(0, MetaName = "DEVICE", Required = true, HelpText = "Image files or block devices of one filesystem (all devices of a multi-device set).")]
    public IEnumerable<string> Devices { get; set; } = [];

    [Option("json", HelpText = "Write JSON to stdout (schema in docs/json.md).")]
    public bool Json { get; set; }

    [Option("super", HelpText = "Use superblock copy N (0: 64 KiB, 1: 64 MiB, 2: 256 GiB) instead of the newest valid copy.")]
    public int? Super { get; set; }

    [Option("backup-root", HelpText = "Use the superblock's backup root N (0-3) for the root tree (used automatically when the root tree is unreadable).")]
    public int? BackupRoot { get; set; }

    [Option("zone-size", HelpText = "Read the devices as zoned with zones of N bytes (superblocks from the log zones): for an image copied from a zoned device. Zoned block devices are recognised without it.")]
    public long? ZoneSize { get; set; }

    [Option("debug", HelpText = "On an internal error, print the stack trace.")]
    public bool Debug { get; set; }
}

[Verb("check", isDefault: true, HelpText = "Check the filesystem's metadata (default verb).")]
public sealed class CheckOptions : CommonOptions
{
    [Option('q', "quiet", HelpText = "Print only findings and the verdict.")]
    public bool Quiet { get; set; }

    [Option("no-live", HelpText = "Refuse a mounted filesystem (exit 3), as btrfs check does. By default a mounted one is checked at its last committed state with O_DIRECT reads.")]
    public bool NoLive { get; set; }

    [Option("report", MetaValue = "FILE.html", HelpText = "Also write the result as one self-contained HTML page: verdict, summary, findings by code, and a map of the block groups.")]
    public string? Report { get; set; }

    [Option("reverify", Default = 3, HelpText = "Mounted filesystem: how many times to rerun the check when a commit lands while it reads (0-100).")]
    public int Reverify { get; set; } = 3;
}

[Verb("dump-super", HelpText = "Print the superblock (every field, backup roots, sys_chunk_array).")]
public sealed class DumpSuperOptions : CommonOptions
{
    [Option("all", HelpText = "Print every superblock copy of every device, not only the one in use.")]
    public bool All { get; set; }
}

[Verb("dump-tree", HelpText = "Print trees or a single tree block with every item decoded.")]
public sealed class DumpTreeOptions : CommonOptions
{
    [Option('t', "tree", HelpText = "Only this tree: a number (5, 256, -6) or a name (root, extent, chunk, dev, fs, csum, uuid, quota, free-space, block-group, data-reloc, log).")]
    public string? Tree { get; set; }

    [Option('b', "block", HelpText = "Only the tree block at this logical address.")]
    public ulong? Block { get; set; }
}
