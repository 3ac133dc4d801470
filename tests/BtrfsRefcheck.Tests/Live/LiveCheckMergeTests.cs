using System.Text.Json;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Cli;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Tests.Live;

/// <summary>How the runs of a mounted check are combined (<see cref="LiveCheck"/>), on synthetic findings; and that
/// an unmounted image is read exactly as before (buffered, no <c>live</c> object).</summary>
public class LiveCheckMergeTests
{
    private static Finding F(FindingCode code, ulong bytenr, Severity sev = Severity.Error, int slot = 0, string msg = "m") =>
        new(code, sev, msg, Bytenr: bytenr, Tree: 2, Slot: slot, Key: new BtrfsKey(bytenr, 169, 0));

    private static CheckReport Report(params Finding[] fs)
    {
        var bag = new FindingBag();
        bag.AddRange(fs);
        return new CheckReport(bag, new CheckStats(), []);
    }

    [Fact]
    public void SettledRun_Stands_EarlierOnlyFindingsAreTransient()
    {
        var a = F(FindingCode.DuplicateTreeBlockRef, 100);
        var runs = new[]
        {
            Report(a, F(FindingCode.TreeBlockChecksumMismatch, 200), F(FindingCode.MissingTreeBlockRef, 300)),
            Report(a, F(FindingCode.TreeBlockChecksumMismatch, 200), F(FindingCode.TreeBlockBytenrMismatch, 400)),
            Report(F(FindingCode.DuplicateTreeBlockRef, 100, slot: 9, msg: "shifted")), // settled: same identity, new slot
        };
        var (final, dropped) = LiveCheck.Settle(runs);
        Assert.Same(runs[2], final);
        Assert.Equal(3, dropped); // 200, 300, 400: distinct identities not in the settled run
    }

    [Fact]
    public void NoRunSettled_OnlyFindingsOfEveryRunAreKept()
    {
        var a = F(FindingCode.DuplicateTreeBlockRef, 100);
        var runs = new[]
        {
            Report(a, F(FindingCode.TreeBlockChecksumMismatch, 200)),
            Report(a, F(FindingCode.TreeBlockChecksumMismatch, 200), F(FindingCode.MissingTreeBlockRef, 300)),
            Report(a, F(FindingCode.MissingTreeBlockRef, 300), F(FindingCode.SuperblockGenerationMismatch, 65536, Severity.Warning),
                   F(FindingCode.SuperblockGenerationMismatch, 1, Severity.Info)),
        };
        var (final, dropped) = LiveCheck.Persistent(runs);
        Assert.Equal([(FindingCode.SuperblockGenerationMismatch, 1UL), (FindingCode.DuplicateTreeBlockRef, 100UL)],
            final.Findings.Items.Select(f => (f.Code, f.Bytenr!.Value)));
        Assert.Equal(1, final.Errors);
        Assert.Equal(3, dropped);

        var (clean, _) = LiveCheck.Persistent([Report(F(FindingCode.TreeBlockChecksumMismatch, 1)), Report(F(FindingCode.TreeBlockChecksumMismatch, 2))]);
        Assert.True(clean.Clean); // exit 0: no error was seen in every state
    }

    [Fact]
    public void Identity_IgnoresMessageAndSlot_ButNotCodeBytenrTreeKey()
    {
        var a = F(FindingCode.DuplicateTreeBlockRef, 100, slot: 1, msg: "x");
        Assert.Equal(LiveCheck.Identity.Of(a), LiveCheck.Identity.Of(a with { Slot = 7, Message = "y", Expected = "3" }));
        Assert.NotEqual(LiveCheck.Identity.Of(a), LiveCheck.Identity.Of(a with { Bytenr = 101 }));
        Assert.NotEqual(LiveCheck.Identity.Of(a), LiveCheck.Identity.Of(a with { Tree = 5 }));
        Assert.NotEqual(LiveCheck.Identity.Of(a), LiveCheck.Identity.Of(a with { Code = FindingCode.StaleTreeBlockRef }));
        Assert.NotEqual(LiveCheck.Identity.Of(a), LiveCheck.Identity.Of(a with { Key = new BtrfsKey(100, 169, 1) }));
    }

    /// <summary>An image no loop device backs is not mounted: buffered reads, no 'live' object, no mount note.</summary>
    [ProgsFact]
    public void UnmountedImage_IsReadAsBefore()
    {
        var image = MkfsFixtures.Get("crc32c");
        Assert.Empty(MountDetector.Find([image]));
        using (var vol = BtrfsVolume.Open([image]))
            Assert.All(vol.Devices, d => { Assert.False(d.DirectIo); Assert.Null(d.DirectIoRefused); });
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(ExitCodes.Ok, Program.Run(["check", "--json", image], o, e));
        Assert.False(JsonDocument.Parse(o.ToString()).RootElement.TryGetProperty("live", out _));
        (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(ExitCodes.Ok, Program.Run(["check", "--no-live", image], o, e));
        Assert.DoesNotContain("mounted", o.ToString());
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("101")]
    [InlineData("x")]
    public void Reverify_OutOfRange_IsAUsageError(string n)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(ExitCodes.Usage, Program.Run(["check", "--reverify", n, "/nonexistent.img"], o, e));
        Assert.Single(e.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>O_DIRECT reads return the same bytes as buffered ones, at any offset and length (unaligned requests
    /// are widened to the alignment and cut back).</summary>
    [ProgsFact]
    public void DirectReads_MatchBufferedReads_AtUnalignedOffsets()
    {
        var image = MkfsFixtures.Get("crc32c");
        using var buffered = BlockDevice.Open(image, direct: false);
        using var direct = BlockDevice.Open(image, direct: true);
        Assert.True(direct.DirectIo || direct.DirectIoRefused != null);
        var rng = new Random(11);
        foreach (var (off, len) in new (long, int)[] { (65536, 4096), (0, 1), (65537, 3), (4095, 2), (30 << 20, 16384), (1, (1 << 20) + 4097), (buffered.Length - 10, 100) }
                 .Concat(Enumerable.Range(0, 50).Select(_ => ((long)rng.NextInt64(buffered.Length), rng.Next(1, 200_000)))))
        {
            var a = new byte[len];
            var b = new byte[len];
            int na = buffered.Read(off, a), nb = direct.Read(off, b);
            Assert.Equal(na, nb);
            Assert.True(a.AsSpan(0, na).SequenceEqual(b.AsSpan(0, nb)), $"bytes differ at {off} +{len}");
        }
    }
}
