using System.Diagnostics;
using System.Text.Json;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Cli;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Live;

/// <summary>Checking a mounted filesystem (issue 11): a kernel-written btrfs on a loop device, mounted, with a writer
/// committing every ~50 ms, is checked 50 times in a row in-process through the CLI entry point. No run may report
/// an error; a defect planted (before mounting) in a read-only subvolume the writer never touches must be reported
/// in every run, with its exact code and bytenr. A third test reproduces the original bug (stale tree blocks in the
/// block device's page cache) and shows that the mounted check does not read them.</summary>
[Collection("loop mounts")]
public class MountedCheckTests(ITestOutputHelper output)
{
    private const int Runs = 50;

    /// <summary>Two subvolumes: <c>frozen</c> (created first: id 256), which nothing writes to after this, and
    /// <c>work</c>, which the writer churns. Enough files that the trees have interior nodes.</summary>
    private const string Populate = """
        set -e
        M=$1
        btrfs -q subvolume create "$M/frozen"
        btrfs -q subvolume create "$M/work"
        for i in $(seq 1 1500); do echo "frozen file $i" > "$M/frozen/f$i"; done
        head -c 1048576 /dev/urandom > "$M/frozen/big"
        for i in $(seq 1 1000); do echo "work file $i" > "$M/work/w$i"; done
        sync -f "$M"
        """;

    /// <summary>Create, append, overwrite, rename, delete; snapshot <c>work</c> and delete older snapshots; syncfs
    /// (a commit) every ~50 ms.</summary>
    private const string Writer = """
        M=$1
        cd "$M/work" || exit 1
        i=0
        while :; do
          i=$((i+1))
          for j in 1 2 3 4 5 6 7 8; do echo "$i $j" > "n$i-$j"; done
          head -c $(( (i * 7919) % 300000 + 4096 )) /dev/urandom > "d$((i % 13))"
          echo "line $i" >> "log$((i % 7))"
          [ -e "n$((i-3))-1" ] && mv "n$((i-3))-1" "r$i"
          rm -f n$((i-10))-* "r$((i-20))" "w$i"
          if (( i % 10 == 0 )); then btrfs subvolume snapshot "$M/work" "$M/snap$i" >/dev/null 2>&1; fi
          if (( i % 10 == 5 && i > 10 )); then btrfs subvolume delete "$M/snap$((i-15))" >/dev/null 2>&1; fi
          sync -f .
          sleep 0.05
        done
        """;

    private static void Fill(LoopFs fs) => LoopFs.Sh($"bash -c '{Populate.Replace("'", "'\\''")}' populate '{fs.MountPoint}'");

    private sealed record RunResult(int Exit, JsonElement Root, string Stdout, string Stderr, TimeSpan Elapsed)
    {
        public JsonElement Live => Root.GetProperty("live");
        public IEnumerable<(int Code, string Severity, ulong? Bytenr)> Bad =>
            Root.GetProperty("findings").EnumerateArray()
                .Select(f => (f.GetProperty("code").GetInt32(), f.GetProperty("severity").GetString()!,
                              f.TryGetProperty("bytenr", out var b) ? b.GetUInt64() : (ulong?)null))
                .Where(f => f.Item2 != "info")
                // mkfs 6.2's stale free-space entries (1102, a warning) are on every image LoopFs makes: not what these tests check
                .Where(f => !(f.Item1 == (int)FindingCode.FreeSpaceStaleMkfsEntries && f.Item2 == "warning"));
    }

    private static RunResult CheckJson(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var sw = Stopwatch.StartNew();
        int exit = Program.Run(["check", "--json", .. args], o, e);
        sw.Stop();
        JsonElement root = default;
        if (o.ToString().Trim().Length > 0) root = JsonDocument.Parse(o.ToString()).RootElement.Clone();
        return new RunResult(exit, root, o.ToString(), e.ToString(), sw.Elapsed);
    }

    [MountFact]
    public void MountedWhileWriting_FiftyChecks_NoError()
    {
        using var fs = LoopFs.Create();
        Fill(fs);
        fs.StartWriter(Writer);
        Thread.Sleep(500);
        var times = new List<double>();
        long reverifications = 0, dropped = 0, unsettled = 0;
        var gens = new List<ulong>();
        for (int run = 0; run < Runs; run++)
        {
            // mostly the loop device; every fifth run the image file that backs it (also mounted, also O_DIRECT)
            string path = run % 5 == 4 ? fs.Image : fs.Loop!;
            var r = CheckJson(path);
            Assert.True(r.Exit == ExitCodes.Ok,
                $"run {run + 1} on {path}: exit {r.Exit}\n{r.Stderr}\n" + string.Join("\n", r.Bad.Take(20)));
            Assert.True(r.Live.GetProperty("direct_io").GetBoolean(), $"run {run + 1}: not O_DIRECT");
            Assert.Contains(fs.MountPoint, r.Live.GetProperty("mounted_at").EnumerateArray().Select(x => x.GetString()));
            Assert.Equal(run % 5 == 4, r.Live.GetProperty("devices")[0].GetProperty("via_loop").GetBoolean());
            reverifications += r.Live.GetProperty("reverifications").GetInt32();
            dropped += r.Live.GetProperty("transient_findings_dropped").GetInt64();
            if (!r.Live.GetProperty("settled").GetBoolean()) unsettled++;
            gens.AddRange(r.Live.GetProperty("generations").EnumerateArray().Select(g => g.GetUInt64()));
            times.Add(r.Elapsed.TotalMilliseconds);
            Thread.Sleep(60); // spread the runs over many commits
        }
        Assert.True(fs.WriterRunning, "the writer stopped early");
        fs.StopWriter();
        // the writer committed all along: the checks saw many generations
        Assert.True(gens.Max() - gens.Min() >= 25, $"generations {gens.Min()}..{gens.Max()}: the writer did not commit");

        // the same filesystem unmounted: buffered reads, no 'live' object, clean
        fs.UnmountAndDetach();
        var cold = new List<double>();
        for (int i = 0; i < 5; i++)
        {
            var r = CheckJson(fs.Image);
            Assert.Equal(ExitCodes.Ok, r.Exit);
            Assert.False(r.Root.TryGetProperty("live", out _));
            cold.Add(r.Elapsed.TotalMilliseconds);
        }
        output.WriteLine($"{Runs} checks while writing: 0 errors; generations {gens.Min()}..{gens.Max()} ({gens.Distinct().Count()} seen); " +
                         $"re-verifications {reverifications}, unsettled runs {unsettled}, transient findings dropped {dropped}; " +
                         $"time per check mounted median {Median(times):F0} ms (max {times.Max():F0}), unmounted median {Median(cold):F0} ms");
    }

    [MountFact]
    public void MountedWhileWriting_DefectInReadOnlySubvolume_FoundInEveryRun()
    {
        using var fs = LoopFs.Create();
        Fill(fs);
        ulong frozen = ulong.Parse(LoopFs.Sh($"btrfs inspect-internal rootid '{fs.MountPoint}/frozen'").Trim());
        LoopFs.Sh($"btrfs property set -ts '{fs.MountPoint}/frozen' ro true");
        fs.UnmountAndDetach();

        var forged = Path.Combine(fs.Dir, "forged.img");
        BtrfsRefcheck.Forge.ForgedDefect defect;
        using (var img = ImageForge.CopyTo(fs.Image, forged)) defect = img.DuplicateTreeBlockRef(owner: frozen);
        File.Delete(fs.Image);
        fs.Image = forged;
        output.WriteLine($"forged: {defect}");
        (int, ulong) expected = ((int)FindingCode.DuplicateTreeBlockRef, defect.Bytenr);

        var before = CheckJson(fs.Image);
        Assert.Equal(ExitCodes.Findings, before.Exit);
        Assert.Equal(new[] { expected }, before.Bad.Select(b => (b.Code, b.Bytenr ?? 0)).ToArray());

        fs.AttachAndMount();
        fs.StartWriter(Writer);
        Thread.Sleep(500);
        long reverifications = 0, dropped = 0;
        var times = new List<double>();
        for (int run = 0; run < Runs; run++)
        {
            string path = run % 5 == 4 ? fs.Image : fs.Loop!;
            var r = CheckJson(path);
            var bad = r.Bad.Select(b => (b.Code, b.Bytenr ?? 0)).ToList();
            Assert.True(r.Exit == ExitCodes.Findings && bad.Count == 1 && bad[0] == expected,
                $"run {run + 1} on {path}: exit {r.Exit}, findings: {string.Join(", ", bad.Take(20))}\n{r.Stderr}");
            reverifications += r.Live.GetProperty("reverifications").GetInt32();
            dropped += r.Live.GetProperty("transient_findings_dropped").GetInt64();
            times.Add(r.Elapsed.TotalMilliseconds);
            Thread.Sleep(60);
        }
        Assert.True(fs.WriterRunning, "the writer stopped early (did the kernel trip on the planted ref?)");
        output.WriteLine($"{Runs} checks while writing: DuplicateTreeBlockRef at {defect.Bytenr} in every run, nothing else; " +
                         $"re-verifications {reverifications}, transient findings dropped {dropped}; median {Median(times):F0} ms");
    }

    /// <summary>The original bug: read the mounted device through its page cache, let the filesystem commit (it writes
    /// tree blocks with bios that bypass that cache), and a buffered read now sees stale blocks — false errors on a
    /// healthy filesystem. The mounted check reads with O_DIRECT and stays clean. The buffered half is asserted too,
    /// so the test shows the stale pages really are there.</summary>
    [MountFact]
    public void StalePageCache_BufferedReadsSeeIt_MountedCheckDoesNot()
    {
        using var fs = LoopFs.Create();
        Fill(fs);
        var loop = fs.Loop!;
        Assert.Equal(0, BufferedErrors(loop));
        // Plant the stale pages: read the whole device through its page cache (free space too, where the next
        // commits will write their tree blocks). Under memory pressure from other work the kernel may drop the planted
        // pages before the check reads them: then plant and commit again (at most three attempts).
        long stale = 0;
        for (int attempt = 0; attempt < 3 && stale == 0; attempt++)
        {
            LoopFs.Sh($"cat '{loop}' > /dev/null");
            for (int round = 0; round < 5; round++)
            {
                int n = attempt * 5 + round;
                LoopFs.Sh($"cd '{fs.MountPoint}/work' && for i in $(seq 1 600); do rm -f w$((i + {n} * 300)) x{n - 5}-$i; echo {n} > x{n}-$i; done && sync -f .");
            }
            stale = BufferedErrors(loop);
            if (stale == 0) output.WriteLine($"attempt {attempt + 1}: no stale block seen through the page cache (pages dropped meanwhile?)");
        }
        output.WriteLine($"buffered check after the commits: {stale} errors (stale tree blocks in the page cache)");
        Assert.True(stale > 0, "no stale block was seen through the page cache: the premise of this test does not hold here");

        var r = CheckJson(loop);
        Assert.True(r.Exit == ExitCodes.Ok, $"exit {r.Exit}: " + string.Join(", ", r.Bad.Take(20)));
        Assert.True(r.Live.GetProperty("direct_io").GetBoolean());

        // The library says the same: every device of the mounted volume is read with O_DIRECT.
        var mounts = MountDetector.Find([loop]);
        Assert.Equal(fs.MountPoint, Assert.Single(Assert.Single(mounts).MountPoints));
        using var live = LiveCheck.Run([loop], new VolumeOptions(), mounts);
        Assert.All(live.Volume.Devices, d => Assert.True(d.DirectIo));
        Assert.True(live.Report.Clean);

        // and the buffered reads still see the stale blocks: nothing above refreshed the cache
        Assert.True(BufferedErrors(loop) > 0);
    }

    [MountFact]
    public void NoLive_RefusesAMountedFilesystem_Exit3OneLine()
    {
        using var fs = LoopFs.Create();
        foreach (var path in new[] { fs.Loop!, fs.Image })
        {
            var (o, e) = (new StringWriter(), new StringWriter());
            int exit = Program.Run(["check", "--no-live", path], o, e);
            Assert.Equal(ExitCodes.CannotCheck, exit);
            var line = Assert.Single(e.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($"mounted at {fs.MountPoint}", line);
            Assert.Contains("--no-live", line);
            Assert.Equal("", o.ToString());
        }
        // without --no-live the text output says so in one line
        var (to, te) = (new StringWriter(), new StringWriter());
        Assert.Equal(ExitCodes.Ok, Program.Run(["check", fs.Loop!], to, te));
        var note = Assert.Single(to.ToString().Split('\n'), l => l.Contains("mounted at"));
        Assert.Contains("last committed state", note);
        Assert.Contains("O_DIRECT", note);
    }

    /// <summary>Two devices mounted by one of them: both count as mounted (found through /sys/fs/btrfs by device
    /// number, not through the mount source), each given as its loop device or as its image file.</summary>
    [MountFact]
    public void MultiDevice_EveryDeviceIsMounted_AndCheckedWithDirectIo()
    {
        using var fs = LoopFs.CreateRaid1();
        Fill(fs);
        var (image2, loop2) = fs.Extra[0];
        var mounts = MountDetector.Find([fs.Loop!, loop2, fs.Image, image2]);
        Assert.Equal(4, mounts.Count);
        Assert.All(mounts, m => Assert.Equal([fs.MountPoint], m.MountPoints));
        Assert.Equal([false, false, true, true], mounts.Select(m => m.ViaLoop));
        Assert.Equal(loop2, mounts[3].Device);

        foreach (var set in new[] { new[] { fs.Loop!, loop2 }, new[] { fs.Image, image2 } })
        {
            var r = CheckJson(set);
            Assert.True(r.Exit == ExitCodes.Ok, $"exit {r.Exit}: {string.Join(", ", r.Bad)} {r.Stderr}");
            Assert.True(r.Live.GetProperty("direct_io").GetBoolean());
            Assert.Equal(2, r.Live.GetProperty("devices").GetArrayLength());
        }
        // the second device alone (the one the mount does not name) is recognised as mounted too
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(ExitCodes.CannotCheck, Program.Run(["check", "--no-live", loop2], o, e));
        Assert.Contains($"{loop2} is mounted at {fs.MountPoint}", e.ToString());
    }

    /// <summary>A buffered check through the library (DirectIo off), as before this change: its error count.</summary>
    private static long BufferedErrors(string device)
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open([device], new VolumeOptions { DirectIo = false }, findings);
        Assert.All(vol.Devices, d => Assert.False(d.DirectIo));
        return Checker.Run(vol, findings).Errors;
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count == 0 ? 0 : s[s.Count / 2];
    }
}
