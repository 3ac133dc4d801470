using System.Text.RegularExpressions;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Tools;

/// <summary>Support for <c>scripts/findings-snapshot.sh</c>: with FINDINGS_SNAPSHOT_IMAGES=DIR, writes every case the
/// snapshot checks into DIR/CASE/ (the committed kernel images, multi-device sets together; the source fixtures; the
/// mkfs fixtures; every forge row of <see cref="ForgeTests.Rows"/> forged on its fixture) and DIR/cases.txt (one line
/// per case: the name, then its image paths). Without the variable it does nothing: it is a tool, not a test. The
/// images are kept so that a later snapshot (other code) checks byte-identical images.</summary>
public class FindingsSnapshotCases
{
    private static readonly Regex DevSuffix = new(@"^(?<set>.+)-dev\d+$", RegexOptions.CultureInvariant);

    [Fact]
    [Trait("Category", "Tool")]
    public void WriteSnapshotCases()
    {
        var dir = Environment.GetEnvironmentVariable("FINDINGS_SNAPSHOT_IMAGES");
        if (string.IsNullOrEmpty(dir)) return;
        Directory.CreateDirectory(dir);
        var lines = new List<string>();

        void Case(string name, IEnumerable<string> sources, Action<ForgedImage>? forge = null)
        {
            var caseDir = Path.Combine(dir, name);
            Directory.CreateDirectory(caseDir);
            var src = sources.ToList();
            using var img = ImageForge.CopyAll(src, ForgeFixtures.TempDir);
            forge?.Invoke(img);
            var dests = new List<string>();
            for (int i = 0; i < img.Paths.Count; i++)
            {
                var dest = Path.Combine(caseDir, Path.GetFileName(src[i]).Replace(".img", "") + ".img");
                SparseCopy.Copy(img.Paths[i], dest);
                dests.Add(dest);
            }
            lines.Add(name + " " + string.Join(' ', dests));
        }

        // Committed kernel images: NAME-devN files form one set, in devid order.
        foreach (var g in KernelFixtures.Present().Select(n => n[..^".img.gz".Length])
                     .GroupBy(n => DevSuffix.Match(n) is { Success: true } m ? m.Groups["set"].Value : n).OrderBy(g => g.Key, StringComparer.Ordinal))
            Case("kernel_" + g.Key, g.OrderBy(n => n, StringComparer.Ordinal).Select(KernelFixtures.Expand));
        foreach (var set in SourceFixtures.Sets().Keys)
            Case("sources_" + set, SourceFixtures.Images(set));
        if (Progs.Available)
            foreach (var spec in MkfsFixtures.All)
                Case("mkfs_" + spec.Name, [MkfsFixtures.Get(spec.Name)]);
        foreach (var (defect, fixture) in ForgeTests.Rows.Where(r => ForgeFixtures.Available(r.Fixture)))
            Case($"forge_{defect}@{fixture}", ForgeFixtures.Images(fixture), img => Defects.Get(defect).Apply(img));
        File.WriteAllLines(Path.Combine(dir, "cases.txt"), lines);
    }
}
