using System.Text.RegularExpressions;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Tests.Differential;

/// <summary>
/// The fixtures every differential test runs on: each mkfs fixture (<c>mkfs:NAME</c>) and each committed kernel image
/// present in <c>testdata/</c> (<c>kernel:NAME</c>). Kernel images named <c>X-devN</c> form one multi-device set <c>kernel:X</c>
/// whose images are ordered by N. Against the v6.19 oracle the fixtures made by mkfs 6.19 (<c>mkfs619:NAME</c>,
/// <see cref="Mkfs619Fixtures"/>) are added: v6.2 cannot read their features (simple quotas, raid-stripe-tree).
/// </summary>
public static class DiffFixtures
{
    private static readonly Regex DevSuffix = new(@"^(?<set>.+)-dev(?<n>\d+)$", RegexOptions.CultureInvariant);

    /// <summary>Every fixture id as xunit <c>[MemberData]</c> rows: mkfs fixtures, then present kernel sets.</summary>
    public static IEnumerable<object[]> All => MkfsIds.Concat(KernelIds()).Select(id => new object[] { id });

    /// <summary>The fixtures the v6.19 oracle is compared on: <see cref="All"/> plus the mkfs 6.19 fixtures.</summary>
    public static IEnumerable<object[]> All619 => All.Concat(Mkfs619.Select(r => r));

    /// <summary>The mkfs 6.19 fixture ids only.</summary>
    public static IEnumerable<object[]> Mkfs619 => Mkfs619Fixtures.All.Select(s => new object[] { "mkfs619:" + s.Name });

    /// <summary>Rows of (fixture, oracle name) for <paramref name="oracle"/>: <see cref="All"/> for v6.2, <see cref="All619"/> for v6.19.</summary>
    public static IEnumerable<object[]> For(ProgsOracle oracle) => oracle.Name == "6.19" ? All619 : All;

    /// <summary>Kernel fixture ids only (may be empty: <see cref="KernelFixturesPresent"/> fails then).</summary>
    public static IEnumerable<object[]> Kernel => KernelIds().Select(id => new object[] { id });

    /// <summary>Kernel sets with more than one device.</summary>
    public static IEnumerable<object[]> KernelMultiDevice =>
        KernelIds().Where(id => KernelSets()[id].Count > 1).Select(id => new object[] { id });

    private static IEnumerable<string> MkfsIds => MkfsFixtures.All.Select(s => "mkfs:" + s.Name);

    private static IEnumerable<string> KernelIds() => KernelSets().Keys.Order(StringComparer.Ordinal).Select(k => k);

    /// <summary>kernel:SET → gz names of its devices in devid order.</summary>
    private static Dictionary<string, List<string>> KernelSets()
    {
        var sets = new Dictionary<string, List<(int N, string Gz)>>(StringComparer.Ordinal);
        foreach (var gz in KernelFixtures.Present())
        {
            var name = gz[..^".img.gz".Length];
            var m = DevSuffix.Match(name);
            var set = "kernel:" + (m.Success ? m.Groups["set"].Value : name);
            int n = m.Success ? int.Parse(m.Groups["n"].Value) : 0;
            if (!sets.TryGetValue(set, out var list)) sets[set] = list = [];
            list.Add((n, gz));
        }
        return sets.ToDictionary(kv => kv.Key, kv => kv.Value.OrderBy(x => x.N).Select(x => x.Gz).ToList(), StringComparer.Ordinal);
    }

    /// <summary>The image paths of a fixture id (unmodified cached images: do not write to them).</summary>
    public static IReadOnlyList<string> Images(string id)
    {
        if (id.StartsWith("mkfs:", StringComparison.Ordinal))
            return [MkfsFixtures.Get(id["mkfs:".Length..])];
        if (id.StartsWith("mkfs619:", StringComparison.Ordinal))
            return Mkfs619Fixtures.Get(id["mkfs619:".Length..]);
        if (id.StartsWith("kernel:", StringComparison.Ordinal))
        {
            if (!KernelSets().TryGetValue(id, out var gz))
                throw new ArgumentException($"kernel fixture '{id}' is not in {KernelFixtures.TestDataDir}");
            return gz.Select(KernelFixtures.Expand).ToList();
        }
        throw new ArgumentException($"unknown fixture id '{id}'");
    }

    /// <summary>
    /// Parsed <c>dump-tree --dfs IMAGE</c> (cached): the full default output, but each tree in depth-first pre-order — the
    /// order <see cref="TreeWalker"/> visits blocks in — instead of v6.2's default breadth-first order.
    /// </summary>
    public static IReadOnlyList<ProgsBlock> ProgsDump(string image) => ProgsDump(Oracle.Progs.V62, image);

    /// <summary><see cref="ProgsDump(string)"/> by <paramref name="oracle"/> (v6.19's default order is breadth-first too).</summary>
    public static IReadOnlyList<ProgsBlock> ProgsDump(ProgsOracle oracle, string image) => OracleCache.DumpTree(oracle, image, "--dfs");

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<ProgsResults>> progsResults = new(StringComparer.Ordinal);

    /// <summary>
    /// What btrfs-progs (the v6.2 oracle) says about a fixture (cached): <c>dump-tree --dfs</c> and <c>check --readonly</c>,
    /// run the way progs can read the fixture — see <see cref="ProgsMode"/>.
    /// </summary>
    public static ProgsResults Progs(string fixture) => Progs(fixture, Oracle.Progs.V62);

    /// <summary><see cref="Progs(string)"/> by <paramref name="oracle"/> (cached per oracle and fixture).</summary>
    public static ProgsResults Progs(string fixture, ProgsOracle oracle) =>
        progsResults.GetOrAdd(oracle.Name + "\0" + fixture,
            _ => new Lazy<ProgsResults>(() => ComputeProgs(fixture, oracle), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    private static ProgsResults ComputeProgs(string fixture, ProgsOracle oracle)
    {
        var images = Images(fixture);
        if (images.Count == 1)
        {
            var (code, stdout, stderr) = oracle.CheckReadonly(images[0]);
            return new ProgsResults(ProgsMode.Files, $"{oracle} on {images[0]}",
                [(Path.GetFileName(images[0]), ProgsDump(oracle, images[0]))], [(Path.GetFileName(images[0]), code, stdout + stderr)]);
        }
        if (LoopDevices.Available)
        {
            return LoopDevices.With(images, loops =>
            {
                var text = oracle.DumpTree(loops[0], "--dfs");
                var (code, stdout, stderr) = oracle.CheckReadonly(loops[0]);
                return new ProgsResults(ProgsMode.Loop, $"{oracle} on loop devices {string.Join(' ', loops)} (the whole set)",
                    [($"loop device of {Path.GetFileName(images[0])}", DumpTreeParser.Parse(text))],
                    [($"loop device of {Path.GetFileName(images[0])}", code, stdout + stderr)]);
            });
        }
        // without loop devices progs only sees image files one at a time: mirrored sets read degraded from any device
        var dumps = new List<(string, IReadOnlyList<ProgsBlock>)>();
        var checks = new List<(string, int, string)>();
        foreach (var image in images)
        {
            var (dcode, dout, derr) = oracle.RunRaw("btrfs", "inspect-internal", "dump-tree", "--dfs", image);
            var blocks = DumpTreeParser.Parse(dout);
            if (dcode != 0 || blocks.Count == 0 || (dout + derr).Contains("unable to open", StringComparison.Ordinal))
                return new ProgsResults(ProgsMode.Unavailable,
                    $"{oracle} cannot read {Path.GetFileName(image)} without the other devices, and loop devices are not available ({LoopDevices.WhyNot}): {derr.Trim()}",
                    [], []);
            dumps.Add((Path.GetFileName(image), blocks));
            var (code, stdout, stderr) = oracle.CheckReadonly(image);
            checks.Add((Path.GetFileName(image), code, stdout + stderr));
        }
        return new ProgsResults(ProgsMode.Degraded, $"{oracle} on each device file alone (degraded)", dumps, checks);
    }

    /// <summary>
    /// Runs <paramref name="body"/> with the paths progs should be given for the fixture's images (index i: image i):
    /// the image files themselves, or loop devices attached to them (then under the loop lock, detached afterwards).
    /// Returns false without running it when progs cannot read the fixture.
    /// </summary>
    public static bool WithProgsDevices(string fixture, Action<IReadOnlyList<string>> body) => WithProgsDevices(fixture, Oracle.Progs.V62, body);

    /// <summary><see cref="WithProgsDevices(string, Action{IReadOnlyList{string}})"/> for <paramref name="oracle"/>.</summary>
    public static bool WithProgsDevices(string fixture, ProgsOracle oracle, Action<IReadOnlyList<string>> body)
    {
        var mode = Progs(fixture, oracle).Mode;
        var images = Images(fixture);
        switch (mode)
        {
            case ProgsMode.Files or ProgsMode.Degraded:
                body(images);
                return true;
            case ProgsMode.Loop:
                LoopDevices.With(images, loops => { body(loops); return 0; });
                return true;
            default:
                return false;
        }
    }

    /// <summary>True for fixtures whose superblock says more than one device.</summary>
    public static bool IsMultiDevice(string id) => Images(id).Count > 1;

    /// <summary>Opens our volume over every image of the fixture.</summary>
    public static BtrfsVolume Open(string id, FindingBag? findings = null) => BtrfsVolume.Open(Images(id), null, findings ?? new FindingBag());

    /// <summary>
    /// Identity of a tree that both sides agree on: the tree id, plus the ROOT_ITEM key offset for log trees (the logged
    /// subvolume) and relocation trees (the relocated subvolume). Snapshot ROOT_ITEM offsets (their creation transid) are
    /// not part of it: there is one ROOT_ITEM per subvolume id.
    /// </summary>
    public static string TreeIdentity(TreeRoot r) => r.Source switch
    {
        RootSource.Superblock when r.Id == BtrfsRefcheck.Format.ObjectIds.TreeLog => "log-root-tree",
        RootSource.Superblock => r.Id.ToString(),
        RootSource.LogRootItem => $"log:{r.KeyOffset}",
        _ when r.Id == BtrfsRefcheck.Format.ObjectIds.TreeReloc => $"reloc:{r.KeyOffset}",
        _ => r.Id.ToString(),
    };

    /// <summary>The same identity from the tree header line progs printed above a block.</summary>
    public static string TreeIdentity(ProgsBlock b)
    {
        switch (b.TreeHeader)
        {
            case null: throw new InvalidOperationException($"progs block {b.Bytenr} (line {b.LineNumber}) has no tree header");
            case "root tree": return "1";
            case "chunk tree": return "3";
            case "log root tree": return "log-root-tree";
        }
        var k = b.TreeHeaderKey ?? throw new InvalidOperationException($"unrecognised tree header '{b.TreeHeader}' above block {b.Bytenr}");
        if (k.ObjectId == ProgsKeyFormat.TreeLog) return $"log:{k.Offset}";
        if (k.ObjectId == ProgsKeyFormat.TreeReloc) return $"reloc:{k.Offset}";
        return k.ObjectId.ToString();
    }

    /// <summary>True for the log root tree and the log trees (their blocks have no extent items).</summary>
    public static bool IsLogIdentity(string identity) => identity == "log-root-tree" || identity.StartsWith("log:", StringComparison.Ordinal);

    /// <summary>Formats at most <paramref name="max"/> differences plus a count of the rest.</summary>
    public static string Report(string what, IReadOnlyList<string> diffs, int max = 20) =>
        $"{what}: {diffs.Count} difference(s){(diffs.Count > max ? $", first {max}" : "")}:\n  " +
        string.Join("\n  ", diffs.Take(max));
}

/// <summary>How progs was made to read a fixture.</summary>
public enum ProgsMode
{
    /// <summary>A single-device image file.</summary>
    Files,
    /// <summary>A multi-device set, each device file given alone (progs reads mirrored profiles degraded).</summary>
    Degraded,
    /// <summary>A multi-device set attached to loop devices, so progs finds every device.</summary>
    Loop,
    /// <summary>Progs cannot read the set here (striped profile, no loop devices).</summary>
    Unavailable,
}

/// <summary>btrfs-progs' view of a fixture: one parsed dump per device progs was given (the same tree content each
/// time) and one <c>check --readonly</c> result per device.</summary>
public sealed record ProgsResults(ProgsMode Mode, string How,
    IReadOnlyList<(string Label, IReadOnlyList<ProgsBlock> Blocks)> Dumps,
    IReadOnlyList<(string Label, int ExitCode, string Output)> Checks);

/// <summary>
/// Read-only loop devices for multi-device image sets, so progs (which finds the other devices of a filesystem only
/// among block devices) can read striped sets. Needs root, <c>losetup</c> and <c>/dev/loop-control</c>. Sessions are
/// serialised: two attached copies of one set would give progs duplicate devices. <c>BTRFS_REFCHECK_NO_LOOP=1</c>
/// disables them (to see what a CI runner without loop devices does).
/// </summary>
public static class LoopDevices
{
    private static readonly object gate = new();
    private static readonly Lazy<string?> whyNot = new(Probe);

    /// <summary>True when loop devices can be attached here.</summary>
    public static bool Available => whyNot.Value == null;

    /// <summary>Why they cannot (null when they can).</summary>
    public static string? WhyNot => whyNot.Value;

    private static string? Probe()
    {
        if (Environment.GetEnvironmentVariable("BTRFS_REFCHECK_NO_LOOP") is { Length: > 0 }) return "disabled by BTRFS_REFCHECK_NO_LOOP";
        if (!OperatingSystem.IsLinux()) return "not Linux";
        if (!Environment.IsPrivilegedProcess) return "not root";
        if (!File.Exists("/dev/loop-control")) return "no /dev/loop-control";
        if (Oracle.Progs.Find("losetup") == null) return "losetup not installed";
        var (code, _, err) = Oracle.Progs.RunRaw("losetup", "-f");
        return code == 0 ? null : $"losetup -f failed: {err.Trim()}";
    }

    /// <summary>
    /// The lock file Volume/RaidFixtureTests also takes (flock through <see cref="FileShare.None"/>, which conflicts
    /// within one process too): no two sessions — of this class, of that test, or of another test process — have loop
    /// devices with the same fixed-fsid images attached at once.
    /// </summary>
    public static readonly string CrossProcessLockPath = Path.Combine(Path.GetTempPath(), "btrfs-refcheck-raid-fixtures.lock");

    private static FileStream AcquireCrossProcessLock()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
        while (true)
        {
            try
            {
                return new FileStream(CrossProcessLockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
        }
    }

    /// <summary>Attaches the images read-only, runs <paramref name="body"/> with the loop device paths (same order), then
    /// makes the kernel forget them and detaches them.</summary>
    public static T With<T>(IReadOnlyList<string> images, Func<IReadOnlyList<string>, T> body)
    {
        lock (gate)
        {
            using var crossProcess = AcquireCrossProcessLock();
            var loops = new List<string>();
            try
            {
                foreach (var image in images)
                    loops.Add(Oracle.Progs.Run("losetup", "-f", "--show", "-r", image).Trim());
                return body(loops);
            }
            finally
            {
                foreach (var l in loops)
                {
                    Oracle.Progs.RunRaw("btrfs", "device", "scan", "--forget", l);
                    Oracle.Progs.RunRaw("losetup", "-d", l);
                }
            }
        }
    }
}

/// <summary>The kernel fixtures must exist: a differential suite that silently runs on nothing is not a test.</summary>
public class DiffFixturesTests
{
    [Fact]
    public void KernelFixturesPresent()
    {
        var present = KernelFixtures.Present();
        Assert.True(present.Count > 0,
            $"no kernel-made image in {KernelFixtures.TestDataDir}: run scripts/make-kernel-fixtures.sh (as root) and commit the .img.gz files");
    }

    [Fact]
    public void FixtureRows_CoverEveryMkfsSpecAndEveryPresentKernelImage()
    {
        var ids = DiffFixtures.All.Select(r => (string)r[0]).ToList();
        foreach (var s in MkfsFixtures.All)
            Assert.Contains("mkfs:" + s.Name, ids);
        int kernelImages = ids.Where(i => i.StartsWith("kernel:", StringComparison.Ordinal))
            .Sum(i => KernelImageCount(i));
        Assert.Equal(KernelFixtures.Present().Count, kernelImages);

        Assert.DoesNotContain(ids, i => i.StartsWith("mkfs619:", StringComparison.Ordinal)); // v6.2 cannot read their features
        var ids619 = DiffFixtures.All619.Select(r => (string)r[0]).ToList();
        Assert.Equal(ids, ids619.Take(ids.Count));
        Assert.Equal(Mkfs619Fixtures.All.Select(s => "mkfs619:" + s.Name), ids619.Skip(ids.Count));

        static int KernelImageCount(string id) =>
            KernelFixtures.Present().Count(gz => "kernel:" + Regex.Replace(gz[..^".img.gz".Length], @"-dev\d+$", "") == id);
    }
}
