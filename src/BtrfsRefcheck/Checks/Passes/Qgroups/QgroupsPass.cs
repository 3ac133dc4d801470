using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Checks;

/// <summary>Pass "quota groups" (btrfs check's qgroup-verify): with a quota tree, every qgroup's referenced and
/// exclusive bytes are recomputed and compared with its QGROUP_INFO. Regular qgroups count every extent (tree blocks
/// and data) reached from a subvolume for that subvolume's level-0 qgroup, exclusive when no other subvolume reaches
/// it, and for every qgroup above it through the relation items (<see cref="QgroupAccounting.ByReachingRoots"/>);
/// simple quotas count each extent since enable_gen for its owner (<see cref="QgroupAccounting.ByOwner"/>). A rescan
/// in progress or the INCONSISTENT flag makes differences expected, as btrfs check says: a note, not an error. It runs
/// before the extent references pass, which consumes the references it reads.</summary>
public sealed class QgroupsPass : ICheckPass
{
    public string Name => "quota groups";

    public IReadOnlyList<FindingCode> Codes { get; } =
        [QgroupCountsMismatch, QgroupStatusNotCurrent, QgroupRelationUnpaired, QgroupRelationOrphan];

    public IReadOnlyList<FindingProducer> Uses { get; } = [];
    public string Reads => "Roots, Scan (blocks, expected back-refs, root blocks, extent leaves, unreadable blocks), the quota tree";
    public string Adds => "nothing";

    public void Run(CheckContext ctx)
    {
        var quotaRoot = ctx.Roots.FirstOrDefault(r => r.Id == ObjectIds.QuotaTree && r.Source == RootSource.RootItem);
        if (quotaRoot == null) return; // quotas not enabled: btrfs check skips the phase
        var config = QuotaConfig.Read(ctx.Volume, quotaRoot);
        var findings = ctx.Findings;
        Relations(config, findings);

        bool simple = (ctx.Volume.Super.IncompatFlags & Features.IncompatSimpleQuota) != 0;
        bool rescan = (config.StatusFlags & QgroupStatus.FlagRescan) != 0;
        bool inconsistent = (config.StatusFlags & QgroupStatus.FlagInconsistent) != 0;
        if (rescan)
        {
            findings.Add(new Finding(QgroupStatusNotCurrent, Severity.Info,
                $"a qgroup rescan is running (at extent {config.RescanProgress}): the qgroup counts are being rebuilt and are not compared",
                Bytenr: config.StatusLeaf, Tree: ObjectIds.QuotaTree, Key: new BtrfsKey(0, (byte)ItemType.QgroupStatus, 0),
                Expected: "ON", Found: QgroupStatus.FlagNames(config.StatusFlags)));
            return;
        }
        if (inconsistent)
            findings.Add(new Finding(QgroupStatusNotCurrent, Severity.Info,
                "the qgroup status is INCONSISTENT and no rescan has run: differences in the qgroup counts are expected (`btrfs quota rescan` rebuilds them)",
                Bytenr: config.StatusLeaf, Tree: ObjectIds.QuotaTree, Key: new BtrfsKey(0, (byte)ItemType.QgroupStatus, 0),
                Expected: "ON", Found: QgroupStatus.FlagNames(config.StatusFlags)));
        if (config.Qgroups.Count == 0) return;

        var sets = new RootSets();
        long[] bytes = simple
            ? QgroupAccounting.ByOwner(ctx, sets, config.EnableGen)
            : QgroupAccounting.ByReachingRoots(ctx, sets);
        Account(config, sets, bytes);
        Compare(ctx, config, simple, inconsistent);
    }

    /// <summary>Relation items come in pairs, (member, RELATION, parent) and (parent, RELATION, member); the kernel and
    /// btrfs check build the hierarchy from the first (objectid below offset) and need both qgroups to exist.</summary>
    private static void Relations(QuotaConfig config, FindingBag findings)
    {
        var present = new HashSet<(ulong, ulong)>();
        foreach (var r in config.Relations) present.Add((r.From, r.To));
        foreach (var (from, to, leaf, slot) in config.Relations)
        {
            var key = new BtrfsKey(from, (byte)ItemType.QgroupRelation, to);
            if (!present.Contains((to, from)))
                findings.Add(new Finding(QgroupRelationUnpaired, Severity.Error,
                    $"qgroup relation {QuotaConfig.Name(from)} -> {QuotaConfig.Name(to)} has no mirror item ({QuotaConfig.Name(to)}, QGROUP_RELATION, {QuotaConfig.Name(from)})"
                    + (from < to ? "" : ": the kernel builds the hierarchy from the member's item, which is missing, so the relation is not in effect"),
                    Bytenr: leaf, Tree: ObjectIds.QuotaTree, Slot: slot, Key: key,
                    Expected: $"({QuotaConfig.Name(to)} QGROUP_RELATION {QuotaConfig.Name(from)})", Found: "none"));
            if (from > to) continue; // the parent's mirror item: the member's item makes the relation
            bool memberOk = config.Qgroups.TryGetValue(from, out var member), parentOk = config.Qgroups.TryGetValue(to, out var parent);
            if (!memberOk || !parentOk)
            {
                findings.Add(new Finding(QgroupRelationOrphan, Severity.Error,
                    $"qgroup relation {QuotaConfig.Name(from)} -> {QuotaConfig.Name(to)} names a qgroup that has no QGROUP_INFO: {(memberOk ? "" : QuotaConfig.Name(from) + " ")}{(parentOk ? "" : QuotaConfig.Name(to))}".TrimEnd(),
                    Bytenr: leaf, Tree: ObjectIds.QuotaTree, Slot: slot, Key: key, Expected: "both qgroups", Found: "missing"));
                continue;
            }
            if (!member!.Parents.Contains(parent!)) member.Parents.Add(parent!);
        }
    }

    /// <summary>btrfs check's account_one_extent, once per root set rather than once per extent: each qgroup that one
    /// of the set's roots reaches (its level-0 qgroup and every qgroup above it) gets the set's bytes as referenced,
    /// and as exclusive when all the set's roots reach it.</summary>
    private static void Account(QuotaConfig config, RootSets sets, long[] bytes)
    {
        var reach = new Dictionary<QgroupRecord, int>();
        var seen = new HashSet<QgroupRecord>();
        var queue = new List<QgroupRecord>();
        for (int s = 1; s < Math.Min(bytes.Length, sets.Count); s++)
        {
            if (bytes[s] == 0) continue;
            var roots = sets[s];
            reach.Clear();
            foreach (ulong root in roots)
            {
                if (!config.Qgroups.TryGetValue(root, out var q)) continue;
                seen.Clear();
                queue.Clear();
                queue.Add(q);
                seen.Add(q);
                for (int i = 0; i < queue.Count; i++)
                {
                    var g = queue[i];
                    reach[g] = reach.GetValueOrDefault(g) + 1;
                    foreach (var p in g.Parents)
                        if (seen.Add(p)) queue.Add(p);
                }
            }
            ulong b = (ulong)bytes[s];
            foreach (var (g, n) in reach)
            {
                g.Rfer += b;
                if (n == roots.Length) g.Excl += b;
            }
        }
    }

    private static void Compare(CheckContext ctx, QuotaConfig config, bool simple, bool inconsistent)
    {
        bool incomplete = ctx.Scan.Unreadable.Count > 0;
        var severity = inconsistent ? Severity.Info : incomplete ? Severity.Warning : Severity.Error;
        string why = inconsistent ? " (expected: the status is INCONSISTENT)"
            : incomplete ? $" (may be a consequence of the {ctx.Scan.Unreadable.Count} unreadable or invalid block(s))" : "";
        var subvolumes = ctx.Roots.Where(r => r.Source == RootSource.RootItem).Select(r => r.Id).ToHashSet();
        foreach (var q in config.Qgroups.Values.OrderBy(q => q.Id))
        {
            if (q.Rfer == q.DiskRfer && q.Excl == q.DiskExcl) continue;
            string what = q.Level == 0 && !subvolumes.Contains(q.Id) ? " (its subvolume no longer exists)" : "";
            ctx.Findings.Add(new Finding(QgroupCountsMismatch, severity,
                $"counts of qgroup {q.Name}{what} are different{why}: referenced {q.DiskRfer} on disk, {q.Rfer} counted"
                + $" (diff {(long)(q.Rfer - q.DiskRfer)}), exclusive {q.DiskExcl} on disk, {q.Excl} counted (diff {(long)(q.Excl - q.DiskExcl)})"
                + (simple ? "; simple quotas: each extent since enable_gen counts for its owner" : ""),
                Bytenr: q.Leaf, Tree: ObjectIds.QuotaTree, Slot: q.Slot, Key: new BtrfsKey(0, (byte)ItemType.QgroupInfo, q.Id),
                Expected: $"referenced {q.Rfer} exclusive {q.Excl}", Found: $"referenced {q.DiskRfer} exclusive {q.DiskExcl}"));
        }
    }
}
