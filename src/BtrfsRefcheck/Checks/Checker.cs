using System.Diagnostics;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Runs the registered passes, in order, over one explicit <see cref="CheckContext"/>. The volume's own work
/// (devices, superblock, chunk map, root choice) is done when it is opened, before the first pass.</summary>
public static class Checker
{
    /// <summary>The passes, in the order they run. Adding a pass: one folder under Checks/Passes, one line here.</summary>
    public static readonly IReadOnlyList<ICheckPass> Passes =
    [
        new RootsPass(),
        new TreeScanPass(),
        new QgroupsPass(), // before the extent join, which consumes the references it reads
        new ExtentRefsPass(),
        new DeviceAccountingPass(),
        new FreeSpacePass(),
        new CsumTreePass(),
        new SubvolumesPass(), // after the csum tree pass, which releases the file extents' csum claims
        new DataChecksumsPass(),
    ];

    /// <summary>Phase names, in order, as progress reports them: the passes' names.</summary>
    public static readonly string[] PhaseNames = Passes.Select(p => p.Name).ToArray();

    /// <summary>The names of the passes a check runs, in order (the data checksums pass only when asked for).</summary>
    public static IReadOnlyList<string> PhasesRun(bool verifyDataChecksums = false) =>
        Passes.Where(p => p.RunsOn(new PassSelection(verifyDataChecksums))).Select(p => p.Name).ToList();

    /// <param name="verifyDataChecksums">Also read and verify every data sector against the csum tree.</param>
    public static CheckReport Run(BtrfsVolume volume, FindingBag findings, ICheckObserver? observer = null, int? degreeOfParallelism = null,
        bool verifyDataChecksums = false)
    {
        var ctx = new CheckContext(volume, findings, observer) { DegreeOfParallelism = degreeOfParallelism, VerifyDataChecksums = verifyDataChecksums };
        return Run(ctx);
    }

    /// <summary>Runs the passes over a context made by the caller (tests set its internal switches).</summary>
    internal static CheckReport Run(CheckContext ctx)
    {
        var (volume, findings) = (ctx.Volume, ctx.Findings);
        var timings = new List<PhaseTiming>();
        var run = Passes.Where(p => p.RunsOn(ctx.Asked)).ToList();
        for (int i = 0; i < run.Count; i++)
        {
            var pass = run[i];
            ctx.Observer.PassStarted(i, run.Count, pass.Name);
            var before = findings.Counts;
            var sw = Stopwatch.StartNew();
            pass.Run(ctx);
            var elapsed = sw.Elapsed;
            timings.Add(new PhaseTiming(pass.Name, elapsed, Emitted(before, findings.Counts)));
            ctx.Observer.PassFinished(i, run.Count, pass.Name, elapsed);
        }
        return new CheckReport(findings, ctx.Stats, timings) { BlockGroups = BlockGroupSummary.From(ctx.Scan), Super = volume.Super };
    }

    /// <summary>Codes whose count grew while a pass ran.</summary>
    private static FindingCode[] Emitted(IReadOnlyDictionary<FindingCode, long> before, IReadOnlyDictionary<FindingCode, long> after) =>
        after.Where(kv => kv.Value > before.GetValueOrDefault(kv.Key)).Select(kv => kv.Key).Order().ToArray();

    /// <summary>The codes a pass may report: its own and those of the components it runs.</summary>
    public static IReadOnlySet<FindingCode> MayReport(ICheckPass pass) =>
        pass.Codes.Concat(pass.Uses.SelectMany(u => u.Codes)).ToHashSet();
}
