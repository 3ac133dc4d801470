namespace BtrfsRefcheck.DelayedRefs;

/// <summary>The bundled scenarios (<c>btrfs-refcheck replay NAME</c>).</summary>
public static class Scenarios
{
    public const string Seed2015 = """
        # seed-2015: the scenario of "Btrfs: fix regression when running delayed references" (Oct 2015, fixed
        # by 2c3cf7d5f610): one tree block, root 5, allocated, freed and allocated again in one transaction while
        # a tree mod log seq is held.
        # Ref1: the block is allocated for root 5 (ADD_DELAYED_EXTENT); no holder, so seq 0
        alloc A root=5 level=0
        # a back-ref walker (qgroup accounting, send, ...) takes a tree mod log seq: tree_mod_seq 1
        hold H1
        # Ref2: root 5 frees the block (seq 1). The list's tail is Ref1 (seq 0): no merge, so check_ref_cleanup
        # finds refs pending and the block does not go back to the free-space cache
        free A root=5 level=0 last
        # the tree mod log moves on: tree_mod_seq 2
        bump
        # Ref3: the same bytenr allocated for root 5 again (seq 2); forced, see docs/delayed-refs.md, caveat 1
        alloc! A root=5 level=0
        # the walker is done
        release H1
        # the transaction runs its delayed refs
        run all
        """;

    public const string Seed2015Holder = """
        # seed-2015-holder: the seed scenario with the seq holder kept through the first run. The run-time merge
        # (4.3) must leave refs at or above the holder's seq alone, and btrfs_check_delayed_seq holds Ref3 back.
        alloc A root=5 level=0
        hold H1
        free A root=5 level=0 last
        bump
        alloc! A root=5 level=0
        # Ref1 (seq 0) runs; Ref3 (seq 2 >= 1) is selected next and the head is parked
        run all
        release H1
        # now Ref2 and Ref3 may merge (4.3, current) or not (4.2)
        run all
        """;

    public const string Lyakas2015 = """
        # lyakas-2015: Alex Lyakas's question in the seed's thread (Dec 2015): what if Ref3 comes from another root?
        # Filipe Manana: the lookup matches root (or parent), so a different root gets its own inline ref (-ENOENT,
        # then setup_inline_extent_backref): legal, snapshots share blocks. No mode fails.
        alloc A root=5 level=0
        # Ref1 runs: the extent item exists with TREE_BLOCK_REF 5
        run all
        hold H1
        # Ref2: root 5 drops the block (seq 1)
        free A root=5 level=0
        bump
        # Ref3: snapshot 257 references it (an inc, as COW of a shared parent does), seq 2
        inc A root=257 level=0
        release H1
        run all
        """;

    public const string Shared2024 = """
        # shared-2024: the 6.10 comparator bug (cf4f04325b2b, fixed by 7d493a5ecc26 in 6.11.10/6.12). A block shared
        # by four snapshots, 256-259; 257, 258 and 259 drop it and 257 takes it back, all pending in one head.
        # comp_refs returns -1 for both orders of two roots, so every insert goes left: the DROPs of 258 and 259 rotate
        # 257's DROP to the right, and 257's ADD, going left twice, never meets it. In-order the ADD is first and its
        # DROP last, so merge_ref (which stops at the first different node) never joins them, and the ADD runs while
        # the DROP is pending. (With the ADDs of other roots instead of DROPs the run-time merge after each ref finds
        # the pair adjacent once the others have run, and the bug does not show: see docs/delayed-refs.md.)
        extent A level=0 refs=root:256,root:257,root:258,root:259
        free A root=257 level=0
        free A root=258 level=0
        free A root=259 level=0
        inc A root=257 level=0
        run all
        """;

    public static readonly IReadOnlyDictionary<string, string> All = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["seed-2015"] = Seed2015,
        ["seed-2015-holder"] = Seed2015Holder,
        ["lyakas-2015"] = Lyakas2015,
        ["shared-2024"] = Shared2024,
    };
}
