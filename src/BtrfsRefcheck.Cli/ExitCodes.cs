namespace BtrfsRefcheck.Cli;

/// <summary>Process exit codes (documented in README.md).</summary>
public static class ExitCodes
{
    /// <summary>Clean: the verb ran and found no error.</summary>
    public const int Ok = 0;
    /// <summary>The verb ran to the end and found errors in the filesystem.</summary>
    public const int Findings = 1;
    /// <summary>The command line is unusable (unknown verb or option, bad value, no device).</summary>
    public const int Usage = 2;
    /// <summary>Could not check: a path is missing or unreadable, not btrfs, belongs to another filesystem,
    /// or no superblock copy is valid.</summary>
    public const int CannotCheck = 3;
    /// <summary>A bug in btrfs-refcheck (an unexpected exception). Reported in one line; --debug shows the trace.</summary>
    public const int InternalError = 4;
}

