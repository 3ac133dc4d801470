using System.Text.Json;
using BtrfsRefcheck.Cli;

namespace BtrfsRefcheck.Tests.Live;

/// <summary><c>scan</c> meets a mounted filesystem: it is checked as <c>check</c> checks it (its last committed state,
/// O_DIRECT), whether reached through its loop device or its image file; with <c>--no-live</c> it is listed as not
/// checked (exit 3), with the mount named.</summary>
[Collection("loop mounts")]
public class ScanMountedTests
{
    private static (int Code, JsonElement Fs) ScanJson(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = Program.Run(["scan", "--json", .. args], o, e);
        using var doc = JsonDocument.Parse(o.ToString());
        var fs = Assert.Single(doc.RootElement.EnumerateArray(), i => i.GetProperty("type").GetString() == "filesystem");
        return (code, fs.Clone());
    }

    [MountFact]
    public void Mounted_CheckedLive_OrNotCheckedWithNoLive()
    {
        using var fs = LoopFs.Create();
        foreach (var path in new[] { fs.Loop!, fs.Image })
        {
            var (code, live) = ScanJson(path);
            Assert.Equal(ExitCodes.Ok, code);
            Assert.Equal("clean", live.GetProperty("verdict").GetString());
            Assert.Contains(fs.MountPoint, live.GetProperty("mounted_at").EnumerateArray().Select(m => m.GetString()));
            Assert.Contains(live.GetProperty("volume_notes").EnumerateArray(), n => n.GetString()!.Contains("last committed state"));

            var (refused, notChecked) = ScanJson("--no-live", path);
            Assert.Equal(ExitCodes.CannotCheck, refused);
            Assert.Equal("not_checked", notChecked.GetProperty("verdict").GetString());
            Assert.Contains($"mounted at {fs.MountPoint}", notChecked.GetProperty("reason").GetString());
            Assert.Contains("--no-live", notChecked.GetProperty("reason").GetString());
        }
    }
}
