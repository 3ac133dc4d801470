using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>One QGROUP_INFO as the quota tree holds it, and where.</summary>
internal sealed class QgroupRecord(ulong id, ulong rfer, ulong excl, ulong leaf, int slot)
{
    public ulong Id { get; } = id;
    public ulong DiskRfer { get; } = rfer;
    public ulong DiskExcl { get; } = excl;
    public ulong Leaf { get; } = leaf;
    public int Slot { get; } = slot;

    /// <summary>The qgroups this one is a member of (from the member-to-parent relation items).</summary>
    public List<QgroupRecord> Parents { get; } = [];
    public ulong Rfer, Excl;

    public int Level => (int)(Id >> 48);
    public string Name => QuotaConfig.Name(Id);
}

/// <summary>The quota tree read once (it is small: one leaf holds about 400 qgroups): the status item, every
/// QGROUP_INFO and every QGROUP_RELATION, as btrfs check's load_quota_info reads them.</summary>
internal sealed class QuotaConfig
{
    public bool HasStatus;
    public ulong StatusFlags;
    public ulong RescanProgress;
    public ulong EnableGen;
    public ulong StatusLeaf;
    public readonly Dictionary<ulong, QgroupRecord> Qgroups = [];

    /// <summary>Every QGROUP_RELATION key (objectid, offset), with where it is.</summary>
    public readonly List<(ulong From, ulong To, ulong Leaf, int Slot)> Relations = [];

    public static string Name(ulong qgroupid) => $"{qgroupid >> 48}/{qgroupid & ((1UL << 48) - 1)}";

    public static QuotaConfig Read(BtrfsVolume volume, TreeRoot quotaRoot)
    {
        var config = new QuotaConfig();
        // The scan has validated (and reported on) the quota tree: this second walk reports nothing of its own.
        new TreeWalker(volume, new FindingBag()).Walk(quotaRoot, new Collector(config), new WalkOptions { Validate = false });
        return config;
    }

    private sealed class Collector(QuotaConfig c) : ITreeVisitor
    {
        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
        {
            var view = block.View;
            if (!view.IsLeaf) return true;
            for (int i = 0; i < view.Count; i++)
            {
                if (!view.TryGetItem(i, out var key, out var data)) continue;
                switch (key.ItemType)
                {
                    case ItemType.QgroupStatus when data.Length >= QgroupStatus.Size:
                        var st = new QgroupStatus(data);
                        c.HasStatus = true;
                        c.StatusFlags = st.Flags;
                        c.RescanProgress = st.Rescan;
                        c.EnableGen = st.EnableGen;
                        c.StatusLeaf = block.Logical;
                        break;
                    case ItemType.QgroupInfo when data.Length >= QgroupInfo.Size:
                        var qi = new QgroupInfo(data);
                        c.Qgroups.TryAdd(key.Offset, new QgroupRecord(key.Offset, qi.Rfer, qi.Excl, block.Logical, i));
                        break;
                    case ItemType.QgroupRelation:
                        c.Relations.Add((key.ObjectId, key.Offset, block.Logical, i));
                        break;
                }
            }
            return false;
        }
    }
}
