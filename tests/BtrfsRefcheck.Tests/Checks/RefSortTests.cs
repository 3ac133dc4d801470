using BtrfsRefcheck.Checks;

namespace BtrfsRefcheck.Tests.ChecksTests;

/// <summary>The expected back-refs' sort (radix on the address, then the rest of the key) and k-way merge (a loser
/// tree) against the plainest possible reference: one comparison sort of everything, then grouping.</summary>
public sealed class RefSortTests
{
    private static readonly RefKind[] Kinds = [RefKind.TreeBlock, RefKind.ExtentData, RefKind.SharedBlock, RefKind.SharedData];

    /// <summary>Random refs over few addresses, kinds and roots, so that equal addresses and equal keys are common.</summary>
    private static RefRec[] RandomRefs(Random rng, int n, Func<Random, ulong> address) =>
        Enumerable.Range(0, n).Select(_ => new RefRec
        {
            Bytenr = address(rng),
            Kind = Kinds[rng.Next(Kinds.Length)],
            RootOrParent = (ulong)rng.Next(3),
            ObjectId = (ulong)rng.Next(2),
            Offset = (ulong)rng.Next(2),
            Block = (ulong)rng.Next(1, 1000) * 4096,
            Slot = (ushort)rng.Next(100),
            Count = (uint)rng.Next(1, 3),
            SizeOrItemOffset = (uint)rng.Next(2),
        }).ToArray();

    private static string Key(RefRec r) => $"{r.Bytenr}/{r.Kind}/{r.RootOrParent}/{r.ObjectId}/{r.Offset}";

    private static string All(RefRec r) => $"{Key(r)} where {r.Block}/{r.Slot} count {r.Count} aux {r.SizeOrItemOffset} inline {r.Inline}";

    public static TheoryData<string> Shapes => new() { "aligned", "dense", "unaligned", "one address", "wide", "huge" };

    private static Func<Random, ulong> Address(string shape) => shape switch
    {
        "aligned" => r => (ulong)r.Next(1 << 20) * 16384 + (30UL << 30), // tree blocks and extents: aligned, far from 0
        "dense" => r => (ulong)r.Next(64) * 4096,                       // many refs per address
        "unaligned" => r => (ulong)r.Next(1 << 30),
        "one address" => _ => 1UL << 40,
        "wide" => r => r.Next(8) == 0 ? ulong.MaxValue - 1 - (ulong)r.Next(4) : (ulong)r.Next(1 << 20) * 4096, // corrupt pointers
        _ => r => (ulong)r.NextInt64() << 1,                              // no room left for an index
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Sort_gives_key_order_and_keeps_every_record(string shape)
    {
        var rng = new Random(shape.Length * 131 + shape[0]);
        foreach (int n in new[] { 0, 1, 2, 15, 16, 17, 100, 16384, 20000 })
        {
            var refs = RandomRefs(rng, n, Address(shape));
            var sorted = refs.ToArray();
            RefSort.Sort(sorted);
            for (int i = 1; i < n; i++)
                Assert.True(RefRec.CompareKey(in sorted[i - 1], in sorted[i]) <= 0, $"{shape} n={n}: out of order at {i}");
            // the same records, each once (a multiset comparison over every field)
            Assert.Equal(refs.Select(All).Order(), sorted.Select(All).Order());
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Merged_stream_aggregates_as_one_big_sort_would(string shape)
    {
        var rng = new Random(shape.Length * 137 + shape[^1]);
        foreach (int segCount in new[] { 1, 2, 3, 7, 64 })
        {
            var segments = Enumerable.Range(0, segCount).Select(_ =>
            {
                var seg = RandomRefs(rng, rng.Next(0, 400), Address(shape));
                RefSort.Sort(seg);
                return (seg, seg.Length);
            }).ToList();
            var all = segments.SelectMany(s => s.seg).ToArray();

            // reference: group equal keys; counts summed, disk_num_bytes kept only when all agree, origin the lowest (Where, Slot)
            var expected = all.GroupBy(Key).Select(g =>
            {
                var members = g.OrderBy(r => r.Block).ThenBy(r => r.Slot).ToList();
                var agg = members[0];
                agg.Count = (uint)Math.Min(members.Sum(r => (long)r.Count), uint.MaxValue);
                agg.SizeOrItemOffset = members.All(r => r.SizeOrItemOffset == members[0].SizeOrItemOffset) ? members[0].SizeOrItemOffset : 0;
                return (Agg: agg, Dups: members.Count > 1 && agg.IsTreeRef ? string.Join(",", members.Select(m => $"{m.Block}/{m.Slot}")) : null);
            }).OrderBy(x => x.Agg.Bytenr).ThenBy(x => (byte)x.Agg.Kind).ThenBy(x => x.Agg.RootOrParent).ThenBy(x => x.Agg.ObjectId).ThenBy(x => x.Agg.Offset).ToList();

            var dups = new List<string>();
            var stream = new SortedRefStream(segments) { OnDuplicateTreeRef = (_, g) => dups.Add(string.Join(",", g.Select(m => $"{m.Block}/{m.Slot}"))) };
            var got = Drain(stream);
            Assert.Equal(expected.Select(x => All(x.Agg)), got.Select(All));
            Assert.Equal(expected.Where(x => x.Dups != null).Select(x => x.Dups!), dups);
        }
    }

    [Fact]
    public void Ranges_of_the_stream_cover_exactly_their_addresses()
    {
        var rng = new Random(7);
        var segments = Enumerable.Range(0, 9).Select(_ =>
        {
            var seg = RandomRefs(rng, 300, r => (ulong)r.Next(200) * 4096);
            RefSort.Sort(seg);
            return (seg, seg.Length);
        }).ToList();
        ulong[] cuts = [0, 50 * 4096, 50 * 4096 + 1, 120 * 4096, ulong.MaxValue];
        var whole = Drain(new SortedRefStream(segments));
        var pieces = new List<string>();
        for (int i = 0; i + 1 < cuts.Length; i++)
        {
            var part = Drain(new SortedRefStream(segments, cuts[i], cuts[i + 1]));
            Assert.All(part, r => Assert.InRange(r.Bytenr, cuts[i], cuts[i + 1] - 1));
            pieces.AddRange(part.Select(All));
        }
        Assert.Equal(whole.Select(All), pieces);
    }

    private static List<RefRec> Drain(SortedRefStream s)
    {
        var got = new List<RefRec>();
        while (s.PeekBytenr != ulong.MaxValue) s.TakeGroup(s.PeekBytenr, got);
        return got;
    }
}
