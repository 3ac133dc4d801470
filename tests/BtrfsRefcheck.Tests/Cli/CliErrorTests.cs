using System.Text.Json;
using BtrfsRefcheck.Cli;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Cli;

/// <summary>
/// User errors through <see cref="Program.Run"/>: each gives the documented exit code (2 usage, 3 cannot check), exactly
/// one line on stderr starting with <c>btrfs-refcheck: </c>, nothing on stdout and nothing resembling a stack trace —
/// for every verb, in text and JSON mode. Plus <c>--help</c> and the JSON envelopes of the three verbs.
/// </summary>
public class CliErrorTests
{
    private static readonly string[] VerbNames = ["check", "dump-super", "dump-tree"];

    /// <summary>The bad inputs, made once per process in a private directory.</summary>
    private static class Inputs
    {
        private static readonly Lazy<string> dir = new(() => TempDirs.CreateForProcess("btrfs-refcheck-cli"));
        private static readonly Lazy<Dictionary<string, string>> files = new(Create, LazyThreadSafetyMode.ExecutionAndPublication);

        public static string Dir => dir.Value;
        public static string File(string name) => files.Value[name];

        private static Dictionary<string, string> Create()
        {
            var d = new Dictionary<string, string>(StringComparer.Ordinal);
            string P(string n) => d[n] = Path.Combine(Dir, n);

            System.IO.File.WriteAllBytes(P("empty.img"), []);
            System.IO.File.WriteAllBytes(P("zeros.img"), new byte[1 << 20]);
            var random = new byte[1 << 20];
            new Random(12345).NextBytes(random);
            System.IO.File.WriteAllBytes(P("random.img"), random);

            // a real image cut to 100 KiB: the primary superblock (64 KiB .. 68 KiB) is intact, everything it points to is gone
            var good = MkfsFixtures.Get("crc32c");
            using (var src = System.IO.File.OpenRead(good))
            using (var dst = System.IO.File.Create(P("truncated.img")))
            {
                var buf = new byte[100 * 1024];
                src.ReadExactly(buf);
                dst.Write(buf);
            }

            // every superblock copy with a bad checksum (one byte of the label changed in copy 0 and copy 1; the image is
            // 512 MiB so copy 2 at 256 GiB does not exist)
            var badsum = P("badsum.img");
            SparseFile.Copy(good, badsum);
            using (var fs = new FileStream(badsum, FileMode.Open, FileAccess.ReadWrite))
            {
                foreach (var off in Superblock.MirrorOffsets.Where(o => o + Superblock.Size <= fs.Length))
                {
                    fs.Position = off + Superblock.LabelAt;
                    int b = fs.ReadByte();
                    fs.Position = off + Superblock.LabelAt;
                    fs.WriteByte((byte)(b ^ 0x20));
                }
            }
            return d;
        }
    }

    private static string Good => MkfsFixtures.Get("crc32c");
    private static string OtherFs => MkfsFixtures.Get("xxhash");

    /// <summary>The error cases: name, expected exit code, arguments after the verb, text the message must contain.</summary>
    private static readonly (string Name, int Code, Func<string[]> Args, Func<string> Mentions)[] Table =
    [
        ("unknown option", ExitCodes.Usage, () => ["--bogus", Good], () => "bogus"),
        ("--super 7", ExitCodes.Usage, () => ["--super", "7", Good], () => "7"),
        ("--super -1", ExitCodes.Usage, () => ["--super", "-1", Good], () => "super"),
        ("--super not a number", ExitCodes.Usage, () => ["--super", "x", Good], () => "super"),
        ("missing path", ExitCodes.CannotCheck, () => [Path.Combine(Inputs.Dir, "does-not-exist.img")], () => "does-not-exist.img"),
        ("directory", ExitCodes.CannotCheck, () => [Inputs.Dir], () => Inputs.Dir),
        ("empty file", ExitCodes.CannotCheck, () => [Inputs.File("empty.img")], () => "empty.img"),
        ("1 MiB of zeros", ExitCodes.CannotCheck, () => [Inputs.File("zeros.img")], () => "zeros.img"),
        ("1 MiB of random bytes", ExitCodes.CannotCheck, () => [Inputs.File("random.img")], () => "random.img"),
        ("every superblock copy bad", ExitCodes.CannotCheck, () => [Inputs.File("badsum.img")], () => "badsum.img"),
        ("--super 1 of a bad copy", ExitCodes.CannotCheck, () => ["--super", "1", Inputs.File("badsum.img")], () => "badsum.img"),
        ("two filesystems", ExitCodes.CannotCheck, () => [Good, OtherFs], () => "xxhash.img"),
        ("same path twice", ExitCodes.CannotCheck, () => [Good, Good], () => "crc32c.img"),
    ];

    /// <summary>Every case for every verb, in text and JSON mode.</summary>
    public static IEnumerable<object[]> Cases() =>
        from c in Table from verb in VerbNames from json in new[] { false, true } select new object[] { c.Name, verb, json };

    [ProgsTheory]
    [MemberData(nameof(Cases))]
    public void UserError_OneLine_DocumentedExitCode(string name, string verb, bool json)
    {
        var c = Table.Single(t => t.Name == name);
        string[] argv = [verb, .. json ? new[] { "--json" } : [], .. c.Args()];
        var r = Run(argv);
        AssertOneLineError(r, c.Code, argv);
        Assert.Contains(c.Mentions(), r.Stderr);
    }

    /// <summary>A damaged image is not a user error: an image cut after a valid superblock is checked, and the
    /// findings say what is missing (chunks past the end of the device, unreadable roots); exit 1, no stack trace.</summary>
    [Theory]
    [InlineData("check", false)]
    [InlineData("check", true)]
    [InlineData("dump-tree", false)]
    [InlineData("dump-tree", true)]
    [InlineData("dump-super", false)]
    public void TruncatedImage_IsCheckedAsDamaged_WithFindings(string verb, bool json)
    {
        string[] argv = [verb, .. json ? new[] { "--json" } : [], Inputs.File("truncated.img")];
        var r = Run(argv);
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        if (verb == "dump-super")
        {
            // the superblock itself is intact and printable; what it points to is for the other verbs
            Assert.Equal(ExitCodes.Ok, r.Code);
            return;
        }
        Assert.Equal(ExitCodes.Findings, r.Code);
        if (json)
        {
            using var doc = JsonDocument.Parse(r.Stdout);
            var codes = doc.RootElement.GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("code").GetInt32()).ToHashSet();
            Assert.True(codes.Contains(303) || codes.Contains(204), "an unreadable root must be reported: " + string.Join(",", codes));
            if (verb == "check") Assert.Contains(717, codes); // ChunkBeyondDevice: the image ends inside its chunks
        }
        else
        {
            Assert.Contains(verb == "check" ? "ChunkBeyondDevice" : "unreadable", r.Stdout + r.Stderr);
        }
    }

    [Fact]
    public void NoArguments_IsAUsageError_SayingADeviceIsNeeded()
    {
        var r = Run([]);
        AssertOneLineError(r, ExitCodes.Usage, []);
        Assert.Contains("device", r.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("''", r.Stderr); // not "missing required option ''"
    }

    [Theory]
    [InlineData("check")]
    [InlineData("dump-super")]
    [InlineData("dump-tree")]
    public void VerbWithoutDevice_IsAUsageError(string verb)
    {
        var r = Run([verb]);
        AssertOneLineError(r, ExitCodes.Usage, [verb]);
        Assert.Contains("device", r.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [ProgsFact]
    public void UnknownVerb_IsReportedInOneLine()
    {
        // "check" is the default verb, so an unknown verb is taken for a device path: exit 3 naming it (or 2 if a
        // future version tells verbs from paths) — either way one line
        var r = Run(["frobnicate", Good]);
        Assert.True(r.Code is ExitCodes.Usage or ExitCodes.CannotCheck, $"exit {r.Code}");
        AssertOneLineError(r, r.Code, ["frobnicate", Good]);
        Assert.Contains("frobnicate", r.Stderr);
    }

    [ProgsTheory]
    [InlineData("bogus")]
    [InlineData("999999")]
    public void DumpTree_BadTree_IsAUsageError(string tree)
    {
        foreach (var json in new[] { false, true })
        {
            string[] argv = ["dump-tree", "--tree", tree, .. json ? new[] { "--json" } : [], Good];
            var r = Run(argv);
            AssertOneLineError(r, ExitCodes.Usage, argv);
            Assert.Contains(tree, r.Stderr);
        }
    }

    [ProgsFact]
    public void DumpTree_BlockAndTreeTogether_IsAUsageError()
    {
        string[] argv = ["dump-tree", "--tree", "root", "--block", "65536", Good];
        AssertOneLineError(Run(argv), ExitCodes.Usage, argv);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("help")]
    public void Help_ExitsZero_AndListsTheVerbs(string arg)
    {
        var r = Run([arg]);
        Assert.Equal(ExitCodes.Ok, r.Code);
        Assert.Equal("", r.Stderr);
        foreach (var verb in VerbNames)
            Assert.Contains(verb, r.Stdout);
    }

    [Theory]
    [InlineData("check")]
    [InlineData("dump-super")]
    [InlineData("dump-tree")]
    public void VerbHelp_ExitsZero_AndListsItsOptions(string verb)
    {
        var r = Run([verb, "--help"]);
        Assert.Equal(ExitCodes.Ok, r.Code);
        Assert.Equal("", r.Stderr);
        Assert.Contains("--json", r.Stdout);
        Assert.Contains("--super", r.Stdout);
    }

    [Fact]
    public void Version_ExitsZero()
    {
        var r = Run(["--version"]);
        Assert.Equal(ExitCodes.Ok, r.Code);
        Assert.StartsWith("btrfs-refcheck ", r.Stdout);
    }

    [ProgsTheory]
    [InlineData("btrfs-refcheck.check", "check", "--json")]
    [InlineData("btrfs-refcheck.check", "check", "--json", "--quiet")]
    [InlineData("btrfs-refcheck.dump-super", "dump-super", "--json")]
    [InlineData("btrfs-refcheck.dump-super", "dump-super", "--json", "--all")]
    [InlineData("btrfs-refcheck.dump-tree", "dump-tree", "--json")]
    [InlineData("btrfs-refcheck.dump-tree", "dump-tree", "--json", "--tree", "root")]
    public void Json_ParsesAndHasFormatAndVersion(string format, params string[] args)
    {
        var r = Run([.. args, Good]);
        Assert.Equal(ExitCodes.Ok, r.Code);
        Assert.Equal("", r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        Assert.Equal(format, root.GetProperty("format").GetString());
        Assert.Equal(JsonValueKind.Number, root.GetProperty("version").ValueKind);
        Assert.True(root.GetProperty("version").GetInt32() >= 1);
    }

    [ProgsFact]
    public void Json_OfACheckWithFindings_StillParses()
    {
        // a readable image with a corrupt tree block copy: exit 1 and findings in the JSON, stderr quiet
        var image = MkfsFixtures.CopyToTemp("msingle");
        try
        {
            ulong root;
            using (var vol = BtrfsRefcheck.Volume.BtrfsVolume.Open([image]))
            {
                root = vol.Super.Root;
                var loc = vol.Chunks.Find(root)!.Map(root, 0, out _);
                Assert.Equal(1, vol.Chunks.Find(root)!.Copies);
                using var fs = new FileStream(image, FileMode.Open, FileAccess.ReadWrite);
                fs.Position = (long)loc.Offset + 3000;
                int b = fs.ReadByte();
                fs.Position = (long)loc.Offset + 3000;
                fs.WriteByte((byte)(b ^ 0xFF));
            }
            var r = Run(["check", "--json", image]);
            Assert.Equal(ExitCodes.Findings, r.Code);
            Assert.Equal("", r.Stderr);
            Assert.DoesNotContain("   at ", r.Stdout);
            using var doc = JsonDocument.Parse(r.Stdout);
            Assert.Equal("btrfs-refcheck.check", doc.RootElement.GetProperty("format").GetString());
            var findings = doc.RootElement.GetProperty("findings");
            Assert.True(findings.GetArrayLength() > 0);
            Assert.Contains(findings.EnumerateArray(), f => f.ToString().Contains(root.ToString()));
        }
        finally
        {
            File.Delete(image);
        }
    }

    // ------------------------------------------------------------------------------------------------------------------

    private sealed record Result(int Code, string Stdout, string Stderr);

    private static Result Run(string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    private static void AssertOneLineError(Result r, int expectedCode, string[] argv)
    {
        string cmd = "btrfs-refcheck " + string.Join(' ', argv);
        string both = $"\n--- stdout:\n{Trim(r.Stdout)}\n--- stderr:\n{r.Stderr}";
        Assert.True(r.Code == expectedCode, $"{cmd}: exit {r.Code}, expected {expectedCode}{both}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
        Assert.True(lines.Count == 1, $"{cmd}: {lines.Count} lines on stderr, expected exactly one{both}");
        Assert.StartsWith("btrfs-refcheck: ", lines[0]);
        Assert.False(lines[0].Contains("internal error"), $"{cmd}: {lines[0]}");
        Assert.True(r.Stdout.Length == 0, $"{cmd}: wrote to stdout on an error exit{both}");
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stdout);
        Assert.DoesNotContain("Exception", r.Stderr);
    }

    private static string Trim(string s) => s.Length > 2000 ? s[..2000] + "..." : s;
}
