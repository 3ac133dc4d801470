using BtrfsRefcheck.DelayedRefs;

namespace BtrfsRefcheck.Tests.DelayedRefs;

/// <summary>Bad scripts and options: one line on stderr naming the script line, exit 2, never a stack trace.</summary>
public class ScriptTests
{
    [Theory]
    [InlineData("alloc A root=5\nfrobnicate A\n", "line 2: unknown operation 'frobnicate'")]
    [InlineData("alloc A\n", "line 1: 'alloc' needs root=N or parent=NAME")]
    [InlineData("# c\n\ninc A root=x\n", "line 3: bad root 'x'")]
    [InlineData("inc A root=5 level=9\n", "line 1: bad level '9' (0-7)")]
    [InlineData("run\n", "line 1: 'run' needs a count or 'all'")]
    [InlineData("release H\n", "line 1: holder H is not held")]
    [InlineData("hold H\nhold H\n", "line 2: holder H is already held")]
    [InlineData("alloc A root=5\nalloc A root=5\n", "line 2: alloc A: the block is not free (reserved); alloc! forces it")]
    [InlineData("extent A refs=root:5,root:5\n", "line 1: extent A: TBR 5 listed twice")]
    [InlineData("inc A root=5 color=red\n", "line 1: unknown key 'color'")]
    [InlineData("# nothing\n", "line 1: empty script")]
    public void BadScriptIsOneLineNamingItsLine(string script, string message)
    {
        var path = Path.Combine(Path.GetTempPath(), $"replay-{Guid.NewGuid():N}.dr");
        File.WriteAllText(path, script);
        try
        {
            var (o, e) = (new StringWriter(), new StringWriter());
            Assert.Equal(2, BtrfsRefcheck.Cli.Program.Run(["replay", path], o, e));
            Assert.Equal($"btrfs-refcheck: {Path.GetFileName(path)}: {message}", e.ToString().TrimEnd('\n', '\r'));
            Assert.DoesNotContain("\n", e.ToString().TrimEnd('\n', '\r'));
            Assert.Equal("", o.ToString());
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData(new[] { "replay", "no-such-scenario" }, "is neither a bundled scenario")]
    [InlineData(new[] { "replay", "seed-2015", "--mode", "4.2" }, "unknown mode '4.2'")]
    [InlineData(new[] { "replay", "seed-2015", "--on-bug", "ignore" }, "unknown --on-bug 'ignore'")]
    [InlineData(new[] { "replay", "seed-2015", "--forge", "/tmp/x.img" }, "--forge OUT and --base IMG go together")]
    [InlineData(new[] { "replay", "seed-2015", "--forge", "/tmp/x.img", "--base", "/nonexistent.img" }, "--forge: /nonexistent.img: no such file")]
    public void BadOptionIsOneLine(string[] args, string fragment)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(2, BtrfsRefcheck.Cli.Program.Run(args, o, e));
        Assert.Contains(fragment, e.ToString());
        Assert.Single(e.ToString().TrimEnd('\n', '\r').Split('\n'));
    }

    [Fact]
    public void ParsesEveryOperation()
    {
        var ops = Script.Parse("extent B level=1 refs=root:256,parent:P\nalloc! A root=5 lvl=0\ninc A parent=P\nfree A root=5 last\nhold H\nbump\nrelease H\nrun 2\nrun all\ncommit\n");
        Assert.Equal([OpKind.Extent, OpKind.Alloc, OpKind.Inc, OpKind.Free, OpKind.Hold, OpKind.Bump, OpKind.Release, OpKind.Run, OpKind.Run, OpKind.Commit], ops.Select(o => o.Kind));
        Assert.True(ops[1].Forced);
        Assert.Equal("P", ops[2].Parent);
        Assert.True(ops[3].Last);
        Assert.Equal(2, ops[7].Count);
        Assert.Null(ops[8].Count);
        Assert.Equal(1, ops[0].Level);
    }

    [Fact]
    public void SharedBlockRefsRunThroughTheModel()
    {
        // SHARED_BLOCK_REF keys are parents: the same lookup rule (same parent = hit) applies.
        var ops = Script.Parse("extent A refs=parent:P\nfree A parent=P\ninc A parent=Q\ninc A parent=P\nrun all\n");
        Assert.Equal(BugKind.Bug, Replay.Run(ops, Mode.Regressed42).FirstBug?.Kind);
        var ok = Replay.Run(ops, Mode.Current);
        Assert.Null(ok.FirstBug);
        Assert.Empty(ok.CheckFinal());
    }
}
