using System.Buffers.Binary;
using System.Reflection;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;
using CliProgram = BtrfsRefcheck.Cli.Program;
using ExitCodes = BtrfsRefcheck.Cli.ExitCodes;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>Names the finding codes a damage test proves on a real image (read by <see cref="DamageCoverageTests"/>).</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class CoversAttribute(params FindingCode[] codes) : Attribute
{
    public IReadOnlyList<FindingCode> Codes { get; } = codes;
}

/// <summary>One finding a damaged image must produce. <see cref="Bytenr"/> null: the finding carries none (device-level
/// findings). <see cref="Mirror"/> and <see cref="Slot"/>, when given, must match too.</summary>
public sealed record Want(FindingCode Code, ulong? Bytenr, Severity Severity = Severity.Error, int? Mirror = null, int? Slot = null)
{
    public static Want Error(FindingCode code, ulong? bytenr = null, int? mirror = null, int? slot = null) => new(code, bytenr, Severity.Error, mirror, slot);
    public static Want Warning(FindingCode code, ulong? bytenr = null, int? mirror = null, int? slot = null) => new(code, bytenr, Severity.Warning, mirror, slot);
    internal string Key => DamageSupport.Key(Code, Bytenr, Severity);
}

/// <summary>Copies of real images damaged in one place, and the exact-set assertion every damage test makes: the findings of
/// severity Warning or Error are exactly the wanted ones (code, bytenr, severity; mirror and slot where given).</summary>
internal static class DamageSupport
{
    /// <summary>A private copy of a fixture (<c>crc32c</c>, <c>msingle</c>, ... or <c>kernel-raid1</c>, the two-device set).</summary>
    public static ForgedImage Copy(string fixture) => ImageForge.CopyAll(ForgeFixtures.Images(fixture), ForgeFixtures.TempDir);

    /// <summary>btrfs check --readonly 6.19 on the image (its first device): exit code and problem lines, written to the
    /// test's output.</summary>
    public static (int Exit, List<string> Lines) Progs619(ITestOutputHelper output, IReadOnlyList<string> paths)
    {
        var (code, stdout, stderr) = Oracle.Progs.V619.CheckReadonly(paths[0]);
        var lines = Sources.SourceFixtureTests.ProblemLines(stdout + "\n" + stderr);
        output.WriteLine($"btrfs check 6.19: exit {code}\n  " + string.Join("\n  ", lines));
        return (code, lines);
    }

    public static BtrfsVolume Open(IReadOnlyList<string> paths) => BtrfsVolume.Open(paths, null, new FindingBag());

    public static TreeRoot Root(IReadOnlyList<string> paths, ulong treeId)
    {
        using var vol = Open(paths);
        return TreeRoots.Enumerate(vol, new FindingBag()).Single(r => r.Id == treeId && r.Source != RootSource.LogRootItem);
    }

    public static ImageScan Scan(IReadOnlyList<string> paths)
    {
        using var vol = Open(paths);
        return ImageScan.Run(vol);
    }

    /// <summary>One edit session: <paramref name="body"/> changes blocks through the session; every changed block gets its
    /// checksum recomputed and is written to every copy.</summary>
    public static void Edit(IReadOnlyList<string> paths, Action<BlockEdits, ImageScan> body)
    {
        using var vol = Open(paths);
        var scan = ImageScan.Run(vol);
        var ed = new BlockEdits(vol);
        body(ed, scan);
        ed.Commit();
    }

    /// <summary>Moves the root block of tree <paramref name="treeId"/> (a ROOT_ITEM of the root tree names it) to the address
    /// <paramref name="pick"/> chooses, consistently: the block's bytes are written there (header bytenr and checksum
    /// updated, every copy), its extent item is re-keyed to the new address and the ROOT_ITEM's bytenr points there. The old
    /// copy stays behind as unreferenced bytes in free space. Returns (old, new) address.</summary>
    public static (ulong Old, ulong New) RelocateRoot(IReadOnlyList<string> paths, ulong treeId, Func<BtrfsVolume, ImageScan, ulong> pick)
    {
        using var vol = Open(paths);
        var scan = ImageScan.Run(vol);
        var root = TreeRoots.Enumerate(vol, new FindingBag()).Single(r => r.Id == treeId && r.Source == RootSource.RootItem);
        var bytes = vol.ReadTreeBlock(root.Bytenr).Block!.Data;
        ulong x = pick(vol, scan);
        var ed = new BlockEdits(vol);
        TreeBlockPlacement.WriteAt(vol, bytes, x);
        TreeBlockPlacement.MoveExtentItem(ed, scan, root.Bytenr, x);
        var (leaf, slot) = TreeBlockPlacement.RootItem(vol, treeId);
        BinaryPrimitives.WriteUInt64LittleEndian(ed.Leaf(leaf).Data(slot)[RootItemFields.BytenrAt..], x);
        ed.Commit();
        return (root.Bytenr, x);
    }

    /// <summary>The whole checker, in process; every finding (the volume's included).</summary>
    public static List<Finding> Check(IReadOnlyList<string> paths, VolumeOptions? options = null)
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(paths, options, findings);
        BtrfsRefcheck.Tests.Diagnostics.PassCodes.AssertDeclared(Checker.Run(vol, findings));
        return findings.Items.ToList();
    }

    internal static string Key(FindingCode code, ulong? bytenr, Severity severity) =>
        $"{(int)code} {code} @{(bytenr is { } b ? b.ToString() : "-")} {severity}";

    /// <summary>The findings of severity Warning and above are exactly <paramref name="want"/> (as a multiset); mkfs 6.2's
    /// stale free-space entries (1102) count only where a test wants that code (<see cref="FindingFilters.IsProblem"/>).</summary>
    public static void AssertExactly(ITestOutputHelper output, IReadOnlyList<Finding> findings, params Want[] want)
    {
        foreach (var f in findings) output.WriteLine($"  {f.Severity} {f}");
        var bad = findings.Where(f => f.IsProblem() || (f.Severity >= Severity.Warning && want.Any(w => w.Code == f.Code))).ToList();
        Assert.Equal(want.Select(w => w.Key).Order(StringComparer.Ordinal).ToList(),
                     bad.Select(f => Key(f.Code, f.Bytenr, f.Severity)).Order(StringComparer.Ordinal).ToList());
        foreach (var w in want.Where(w => w.Mirror != null || w.Slot != null))
            Assert.True(bad.Any(f => f.Code == w.Code && f.Bytenr == w.Bytenr && (w.Mirror == null || f.Mirror == w.Mirror) && (w.Slot == null || f.Slot == w.Slot)),
                $"no {w.Key} with mirror {w.Mirror?.ToString() ?? "any"} and slot {w.Slot?.ToString() ?? "any"}");
    }

    /// <summary>The command line, in process. Whatever it says, it never prints a stack trace or an internal error.</summary>
    public static (int Exit, string Stdout, string Stderr) RunCli(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int exit = CliProgram.Run(args, o, e);
        string all = o + "\n" + e;
        Assert.DoesNotContain("   at ", all);
        Assert.DoesNotContain("internal error", all);
        return (exit, o.ToString(), e.ToString());
    }

    /// <summary><c>check</c> exits 1 (errors found) and names every wanted error code.</summary>
    public static void AssertCliFindsErrors(IReadOnlyList<string> paths, params FindingCode[] codes)
    {
        var (exit, stdout, stderr) = RunCli(["check", .. paths]);
        Assert.True(exit == ExitCodes.Findings, $"exit {exit}\n{stdout}\n{stderr}");
        foreach (var c in codes) Assert.Contains($"[{(int)c} {c}]", stdout);
    }

    /// <summary>A stripe location's physical start on its device for logical <paramref name="logical"/>, copy <paramref name="copy"/>.</summary>
    public static ulong Physical(IReadOnlyList<string> paths, ulong logical, int copy = 0)
    {
        using var vol = Open(paths);
        return vol.Chunks.Find(logical)!.Map(logical, copy, out _).Offset;
    }
}

/// <summary>Every finding code is proven on a real image: named by a test that damages a copy of a real image (kernel or
/// mkfs fixture) and asserts its exact findings, either with <see cref="CoversAttribute"/> (in any namespace of this
/// assembly: the damage tests here, the one-item forgeries of ItemValidatorImageTests) or as a promised code of a forge
/// defect that <see cref="ForgeTests"/> runs. No code is exempt.</summary>
public class DamageCoverageTests
{
    [Fact]
    public void EveryCodeHasADamageTest()
    {
        var covered = typeof(DamageCoverageTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .SelectMany(m => m.GetCustomAttributes<CoversAttribute>().SelectMany(a => a.Codes))
            .ToHashSet();
        covered.UnionWith(ForgeTests.Rows.SelectMany(r => Defects.Get(r.Defect).Codes));
        var missing = Enum.GetValues<FindingCode>().Where(c => !covered.Contains(c)).ToList();
        Assert.True(missing.Count == 0, "no damage test for " + string.Join(", ", missing.Select(c => $"{(int)c} {c}")));
    }

    /// <summary>A [Covers] tag is on a test xunit runs.</summary>
    [Fact]
    public void CoversTagsAreOnTests()
    {
        var untested = typeof(DamageCoverageTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .Where(m => m.GetCustomAttributes<CoversAttribute>().Any() && m.GetCustomAttribute<FactAttribute>() == null)
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}").ToList();
        Assert.True(untested.Count == 0, "[Covers] on a method that is not a test: " + string.Join(", ", untested));
    }
}
