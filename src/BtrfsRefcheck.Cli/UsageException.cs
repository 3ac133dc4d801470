namespace BtrfsRefcheck.Cli;

/// <summary>A problem with the command line: reported as one line on stderr, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
