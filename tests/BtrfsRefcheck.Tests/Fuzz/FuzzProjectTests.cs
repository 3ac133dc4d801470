using System.Xml.Linq;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Fuzz;

/// <summary>The standalone fuzz runner shares the fuzzer through tests/BtrfsRefcheck.FuzzLib, never by referencing the
/// test project (which would drag xunit and every test into it); the library itself has no xunit either.</summary>
public class FuzzProjectTests
{
    private static List<string> References(string project, string kind) =>
        XDocument.Load(Path.Combine(KernelFixtures.RepoRoot, "tests", project, project + ".csproj"))
            .Descendants(kind).Select(e => (string?)e.Attribute("Include") ?? "").ToList();

    [Fact]
    public void FuzzRunnerReferencesTheLibraryNotTheTests()
    {
        var refs = References("BtrfsRefcheck.Fuzz", "ProjectReference");
        Assert.Contains(refs, r => r.EndsWith("BtrfsRefcheck.FuzzLib.csproj", StringComparison.Ordinal));
        Assert.DoesNotContain(refs, r => r.EndsWith("BtrfsRefcheck.Tests.csproj", StringComparison.Ordinal));
    }

    [Fact]
    public void FuzzLibraryHasNoTestFramework()
    {
        Assert.DoesNotContain(References("BtrfsRefcheck.FuzzLib", "PackageReference"), p => p.StartsWith("xunit", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(References("BtrfsRefcheck.FuzzLib", "ProjectReference"), r => r.EndsWith("BtrfsRefcheck.Tests.csproj", StringComparison.Ordinal));
    }
}
