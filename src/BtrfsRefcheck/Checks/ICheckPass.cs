using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Checks;

/// <summary>One pass of the check, in the way a Roslyn analyzer declares what it reports: a name (the phase printed),
/// the finding codes it owns (it is their only producer: docs/findings.md names it, a test keeps that true), the
/// named components it runs whose codes it may report too, what it reads from the <see cref="CheckContext"/> and
/// what it adds to it. A pass reports what is wrong as findings and never throws for corrupt data.</summary>
public interface ICheckPass
{
    /// <summary>The phase name progress shows, e.g. "roots".</summary>
    string Name { get; }

    /// <summary>The finding codes this pass produces itself.</summary>
    IReadOnlyList<FindingCode> Codes { get; }

    /// <summary>Named components the pass runs (the tree walk, the tree-block validator, ...): their codes may be
    /// reported while it runs.</summary>
    IReadOnlyList<FindingProducer> Uses { get; }

    /// <summary>What the pass reads from the context (for docs/architecture.md and the next engineer).</summary>
    string Reads { get; }

    /// <summary>What the pass adds to the context.</summary>
    string Adds { get; }

    /// <summary>Whether the pass runs on a check asked for with these options (a pass asked for by an option, such as
    /// reading every data sector, says no when it was not asked for): a pass that does not run is neither printed nor
    /// timed. It depends on the options only, so the phases a check will run are known before a volume is open.</summary>
    bool RunsOn(PassSelection asked) => true;

    void Run(CheckContext ctx);
}

/// <summary>What the caller asked the check to run, beyond the passes every check runs.</summary>
/// <param name="VerifyDataChecksums">Read and verify every data sector the csum tree covers.</param>
public readonly record struct PassSelection(bool VerifyDataChecksums);
