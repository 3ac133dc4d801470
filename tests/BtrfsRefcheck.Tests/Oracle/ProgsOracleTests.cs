namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>How the two btrfs-progs oracles are found, and that the second one really is v6.19.</summary>
public class ProgsOracleTests
{
    [Fact]
    public void Locate619_ReasonFromTheScripts_WinsAndIsTheSkipReason()
    {
        var o = Progs.Locate619("../shared/btrfs-progs/build.sh failed", "/usr/bin", null);
        Assert.False(o.Available);
        Assert.Equal("btrfs-progs 6.19 unavailable: ../shared/btrfs-progs/build.sh failed", o.WhyMissing);
    }

    [Fact]
    public void Locate619_FolderWithoutBinaries_IsMissingWithTheFolderNamed()
    {
        var dir = TempDirs.CreateForProcess("progs619-empty");
        var o = Progs.Locate619(null, dir, null);
        Assert.False(o.Available);
        Assert.Contains($"BTRFS_PROGS_619_BIN={dir}", o.WhyMissing);
        Assert.Contains("no btrfs there", o.WhyMissing);
        var cached = Progs.Locate619(null, null, dir);
        Assert.False(cached.Available);
        Assert.Contains(Path.Combine(dir, "bin"), cached.WhyMissing);
    }

    [ProgsFact]
    public void Locate619_SystemProgsIsNot619()
    {
        var dir = Path.GetDirectoryName(Progs.BtrfsPath)!;
        if (Progs.Find(Path.Combine(dir, "mkfs.btrfs")) == null) return; // btrfs and mkfs.btrfs in different folders here
        var o = Progs.Locate619(null, dir, null);
        Assert.False(o.Available);
        Assert.Contains("btrfs --version", o.WhyMissing);
    }

    [Progs619Fact]
    public void V619_IsVersion619AndV62Is62()
    {
        Assert.Contains("v6.19", Progs.V619.Run("btrfs", "--version"));
        Assert.Contains("v6.2", Progs.V62.Run("btrfs", "--version"));
        Assert.DoesNotContain("v6.19", Progs.V62.Run("btrfs", "--version"));
        Assert.NotNull(Progs.V619.BinDir);
        Assert.Null(Progs.V62.BinDir);
    }
}
