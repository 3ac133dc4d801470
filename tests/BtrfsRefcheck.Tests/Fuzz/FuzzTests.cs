using System.Diagnostics;
using BtrfsRefcheck.Tests.Oracle;
using Xunit.Abstractions;

namespace BtrfsRefcheck.Tests.Fuzz;

/// <summary>The bounded fuzz run of CI: fixed seeds over every fixture (about 260 cases, well under three minutes on
/// two cores), each case one mutation of a real image (random bytes with the checksum recomputed or kept, structural
/// edits, superblock fields, truncation and zeroed ranges, several blocks at once), then <c>check</c>, <c>dump-tree</c>
/// and <c>dump-super --all</c> in-process with a time bound. A case fails on an internal error (exit 4), an exception,
/// a stack trace on stderr, a hang, a runaway allocation, a really changed image that checks clean, or an image with
/// nothing really changed that does not (the rule: <see cref="Expectation"/>). <c>scripts/fuzz.sh</c> runs the same
/// fuzzer for as long as asked.</summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    /// <summary>Seeds per fixture: the small mkfs images get 20 cases each, the kernel images more (they have
    /// snapshots, a log tree, RAID1 across two devices), kernel-snapshots fewer (its dump-tree takes ~0.5 s).</summary>
    public static TheoryData<string, int, int> Runs => new()
    {
        { "crc32c", 1_000, 20 },
        { "xxhash", 2_000, 20 },
        { "sha256", 3_000, 20 },
        { "blake2", 4_000, 20 },
        { "node4k", 5_000, 20 },
        { "node64k", 6_000, 20 },
        { "noskinny", 7_000, 20 },
        { "mixed", 8_000, 20 },
        { "msingle", 9_000, 20 },
        { "mdup", 10_000, 20 },
        { "kernel-snapshots", 11_000, 18 },
        { "kernel-logtree", 12_000, 20 },
        { "kernel-raid1", 13_000, 16 },
        { "kernel-raid0", 14_000, 12 },
        { "kernel-raid10", 15_000, 12 },
        { "kernel-raid1c3", 16_000, 12 },
        { "kernel-raid5", 17_000, 12 },
        { "kernel-raid6", 18_000, 12 },
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public void Mutated_images_never_crash_hang_or_pass_unnoticed(string fixture, int firstSeed, int cases)
    {
        var sw = Stopwatch.StartNew();
        // Each verb run may allocate at most 1 GiB (measured on its own thread, so other tests running in parallel in
        // this process do not count); the working-set bound is looser here than in the standalone runner for the same reason.
        var options = new FuzzOptions { CrashDir = Path.Combine(Path.GetTempPath(), "fuzz-crashes"), WorkingSetLimit = 3L << 30 };
        using var session = new FuzzSession(FuzzFixtures.Get(fixture), options);
        var stats = new FuzzStats();
        for (int i = 0; i < cases; i++)
        {
            var r = session.Run(firstSeed + i);
            stats.Add(r);
            if (r.Outcome == Outcome.Hang) break; // the stuck thread still reads the working copy
        }
        output.WriteLine($"{fixture}: {cases} cases in {sw.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(stats.Summary());
        var failures = stats.Failures;
        Assert.True(failures.Count == 0,
            $"{failures.Count} of {stats.Cases} fuzz cases on {fixture} failed:\n" + string.Join("\n", failures.Take(20).Select(f => f.Describe())));
    }

    /// <summary>Every mutation kind and its expectation on one fixture, and the working copy restored byte for byte
    /// afterwards (the journal the whole fuzzer relies on).</summary>
    [Fact]
    public void Every_kind_mutates_and_the_working_copy_is_restored()
    {
        var options = new FuzzOptions();
        using var session = new FuzzSession(FuzzFixtures.Get("mdup"), options);
        var fuzzer = new Fuzzer(session.Fixture, session.Work);
        var seen = new HashSet<(MutationKind, Expectation)>();
        foreach (var kind in Enum.GetValues<MutationKind>())
        {
            for (int seed = 0; seed < 12; seed++)
            {
                var m = fuzzer.Mutate(seed, kind);
                Assert.Equal(kind, m.Kind);
                Assert.False(string.IsNullOrWhiteSpace(m.Description));
                seen.Add((m.Kind, m.Expect));
                if (m.Expect != Expectation.MustBeClean) Assert.True(session.Work.Dirty, $"{m} changed nothing");
                session.Work.Restore();
            }
        }
        Assert.True(session.Work.EqualsPristine(out string? diff), diff);
        // the must-detect rule applies to every kind
        foreach (var kind in Enum.GetValues<MutationKind>())
            Assert.Contains((kind, Expectation.MustDetect), seen);
    }

    /// <summary>The same seed gives the same mutation: a CI failure is reproduced by its seed.</summary>
    [Fact]
    public void A_seed_reproduces_its_mutation()
    {
        using var session = new FuzzSession(FuzzFixtures.Get("crc32c"), new FuzzOptions());
        var fuzzer = new Fuzzer(session.Fixture, session.Work);
        for (int seed = 100; seed < 130; seed++)
        {
            var a = fuzzer.Mutate(seed);
            session.Work.Restore();
            var b = fuzzer.Mutate(seed);
            session.Work.Restore();
            Assert.Equal(a, b);
        }
    }

    /// <summary>The judge is not vacuous: a clean answer on a really changed image is a failure, a broken checksum is
    /// detected, an internal error or a stack trace is a failure.</summary>
    [Fact]
    public void The_judge_can_fail()
    {
        using var session = new FuzzSession(FuzzFixtures.Get("crc32c"), new FuzzOptions { OnlyKind = MutationKind.KeepChecksum });
        Assert.Equal(0, session.BaselineExit);
        var pristine = FuzzSession.RunVerb(["check", "--json", .. session.Work.Paths], new FuzzOptions(), captureStdout: true);
        var must = new Mutation(MutationKind.RandomBytes, "test", Expectation.MustDetect, "test", "pretend");
        Assert.Equal(Outcome.Missed, session.Judge(must, [pristine]).Outcome);
        Assert.Equal(Outcome.Ok, session.Judge(must with { Expect = Expectation.MustBeClean }, [pristine]).Outcome);
        Assert.Equal(Outcome.Crash, session.Judge(must with { Expect = Expectation.MayDetect }, [pristine with { Exit = 4 }]).Outcome);
        Assert.Equal(Outcome.StackTrace, session.Judge(must with { Expect = Expectation.MayDetect },
            [pristine with { Stderr = "boom\n   at BtrfsRefcheck.Volume.BtrfsVolume.Open(IReadOnlyList`1 paths)\n" }]).Outcome);
        Assert.Equal(Outcome.Hang, session.Judge(must, [pristine with { TimedOut = true }]).Outcome);

        int detected = 0;
        for (int seed = 0; seed < 8; seed++)
        {
            var r = session.Run(seed);
            Assert.Equal(MutationKind.KeepChecksum, r.Mutation.Kind);
            if (r.Mutation.Expect != Expectation.MustDetect) continue;
            Assert.True(r.Detected && r.CheckExit == 1, r.Describe());
            detected++;
        }
        Assert.True(detected > 0);
    }
}
