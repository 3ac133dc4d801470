using BtrfsRefcheck.Cli.Verbs;
using BtrfsRefcheck.Volume;
using CommandLine;
using CommandLine.Text;

namespace BtrfsRefcheck.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Entry point for tests: runs a command line in-process with the given writers.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        bool debug = args.Contains("--debug");
        try
        {
            using var parser = new Parser(s =>
            {
                s.HelpWriter = null;
                s.CaseSensitive = true;
                s.AutoHelp = true;
                s.AutoVersion = true;
            });
            var result = parser.ParseArguments<CheckOptions, DumpSuperOptions, DumpTreeOptions, ReplayOptions, WhoRefsOptions, MapOptions, ScanOptions>(args);
            return result.MapResult(
                (CheckOptions o) => CheckVerb.Run(o, stdout, stderr),
                (DumpSuperOptions o) => DumpSuperVerb.Run(o, stdout, stderr),
                (DumpTreeOptions o) => DumpTreeVerb.Run(o, stdout, stderr),
                (ReplayOptions o) => ReplayVerb.Run(o, stdout, stderr),
                (WhoRefsOptions o) => WhoRefsVerb.Run(o, stdout, stderr),
                (MapOptions o) => MapVerb.Run(o, stdout, stderr),
                (ScanOptions o) => ScanVerb.Run(o, stdout, stderr),
                errors => ReportParseErrors(result, errors.ToList(), stdout, stderr));
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"btrfs-refcheck: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (VolumeException e)
        {
            stderr.WriteLine($"btrfs-refcheck: {UserMessage(e)}");
            return ExitCodes.CannotCheck;
        }
        catch (Exception e) when (!debug)
        {
            stderr.WriteLine($"btrfs-refcheck: internal error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} (rerun with --debug for the stack trace; please report it)");
            return ExitCodes.InternalError;
        }
    }

    /// <summary>The library says "backup root 2", "superblock copy 1"; the user typed a flag: name it.</summary>
    private static string UserMessage(VolumeException e) =>
        e.BackupRoot is { } n ? e.Message.Replace($"backup root {n}:", $"--backup-root {n}:")
        : e.SuperblockCopy is { } m ? e.Message.Replace($"superblock copy {m}:", $"--super {m}:")
        : e.Message;

    private static int ReportParseErrors(ParserResult<object> result, List<Error> errors, TextWriter stdout, TextWriter stderr)
    {
        if (errors.Any(e => e is HelpRequestedError or HelpVerbRequestedError or VersionRequestedError))
        {
            if (errors.Any(e => e is VersionRequestedError))
                stdout.WriteLine($"btrfs-refcheck {typeof(Program).Assembly.GetName().Version}");
            else
                stdout.WriteLine(HelpText.AutoBuild(result, h => { h.AdditionalNewLineAfterOption = false; h.Heading = "btrfs-refcheck: read-only btrfs metadata and back-reference checker"; h.Copyright = ""; return h; }, e => e, verbsIndex: result.TypeInfo.Current == typeof(NullInstance)));
            return ExitCodes.Ok;
        }
        stderr.WriteLine($"btrfs-refcheck: {Describe(errors[0])} (see btrfs-refcheck --help)");
        return ExitCodes.Usage;
    }

    private static string Describe(Error e) => e switch
    {
        BadVerbSelectedError b => $"unknown verb '{b.Token}'",
        UnknownOptionError u => $"unknown option '{u.Token}'",
        MissingRequiredOptionError m when m.NameInfo.NameText is "" or "DEVICE" => "no device given", // a [Value] has an empty NameText
        MissingRequiredOptionError m => $"missing required option '{m.NameInfo.NameText}'",
        MissingValueOptionError m => $"option '{m.NameInfo.NameText}' needs a value",
        BadFormatConversionError b => $"bad value for '{b.NameInfo.NameText}'",
        BadFormatTokenError b => $"bad token '{b.Token}'",
        SequenceOutOfRangeError s => $"wrong number of values for '{s.NameInfo.NameText}'",
        RepeatedOptionError r => $"option '{r.NameInfo.NameText}' given twice",
        NoVerbSelectedError => "no verb or device given",
        _ => e.Tag.ToString(),
    };
}
