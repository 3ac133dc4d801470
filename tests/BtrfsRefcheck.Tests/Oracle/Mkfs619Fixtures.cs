using System.Collections.Concurrent;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>
/// A filesystem made by btrfs-progs 6.19's mkfs.btrfs (<see cref="Progs.V619"/>). Every image gets
/// <c>-f -L NAME -U UUID</c>, and <c>--rootdir CONTENT</c> (the content of <see cref="MkfsFixtures"/>) when
/// <see cref="RootDir"/> is true; <see cref="Devices"/> image files make one filesystem.
/// </summary>
public sealed record Mkfs619Spec(string Name, params string[] Args)
{
    /// <summary>Fill it with <see cref="MkfsFixtures.ContentDir"/>. False where mkfs 6.19 refuses or fails <c>--rootdir</c>
    /// for that profile; <see cref="WhyNoContent"/> says which.</summary>
    public bool RootDir { get; init; } = true;

    /// <summary>Why <see cref="RootDir"/> is false (what mkfs 6.19 said).</summary>
    public string? WhyNoContent { get; init; }

    /// <summary>Number of image files (devices) of the filesystem.</summary>
    public int Devices { get; init; } = 1;

    /// <summary>Size of each image file (sparse).</summary>
    public long ImageSize { get; init; } = MkfsFixtures.DefaultImageSize;

    /// <summary>Deterministic fsid derived from the name, like <see cref="MkfsSpec.Uuid"/> (prefixed so no 6.2 fixture shares it).</summary>
    public string Uuid => new MkfsSpec("mkfs619:" + Name).Uuid;

    /// <inheritdoc/>
    public override string ToString() => Args.Length == 0 ? Name : $"{Name} ({string.Join(' ', Args)})";
}

/// <summary>
/// Images created at test time by btrfs-progs 6.19's mkfs.btrfs, only where 6.19 is available (<see cref="Progs.V619"/>):
/// its defaults (block-group-tree on) and the features v6.2 cannot make (simple quotas, raid-stripe-tree, zoned).
/// Same cache rules as <see cref="MkfsFixtures"/>: created once per process under its <see cref="MkfsFixtures.FixtureRoot"/>,
/// never to be modified by tests.
/// </summary>
public static class Mkfs619Fixtures
{
    /// <summary>All named specs.</summary>
    public static readonly IReadOnlyList<Mkfs619Spec> All =
    [
        new("default"),
        new("squota", "-O", "squota"),
        new("quota", "-O", "quota"),
        new("rst-dup", "-O", "raid-stripe-tree", "-d", "dup")
        {
            RootDir = false,
            WhyNoContent = "mkfs 6.19 --rootdir with raid-stripe-tree fails writing file data: 'failed to add file extents ... Input/output error'",
        },
        new("rst-raid1", "-O", "raid-stripe-tree", "-d", "raid1", "-m", "raid1")
        {
            Devices = 2, RootDir = false, WhyNoContent = "mkfs 6.19: 'the option -r is limited to a single device'",
        },
        new("zoned", "-O", "zoned")
        {
            ImageSize = 4L << 30, RootDir = false, WhyNoContent = "mkfs 6.19: 'the option -r and zoned mode are incompatible'",
        },
    ];

    private static readonly ConcurrentDictionary<string, Lazy<IReadOnlyList<string>>> images = new(StringComparer.Ordinal);

    /// <summary>The spec called <paramref name="name"/>.</summary>
    public static Mkfs619Spec Spec(string name) =>
        All.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"unknown mkfs 6.19 fixture '{name}'", nameof(name));

    /// <summary>The image files of <paramref name="name"/> (devid order), created on first use (thread-safe, once per process).</summary>
    public static IReadOnlyList<string> Get(string name)
    {
        var spec = Spec(name);
        if (!Progs.V619.Available)
            throw new InvalidOperationException($"mkfs 6.19 fixture '{name}' needs btrfs-progs 6.19: {Progs.V619.WhyMissing}");
        return images.GetOrAdd(name, _ => new Lazy<IReadOnlyList<string>>(() => Create(spec), LazyThreadSafetyMode.ExecutionAndPublication)).Value;
    }

    private static IReadOnlyList<string> Create(Mkfs619Spec spec)
    {
        var paths = Enumerable.Range(1, spec.Devices)
            .Select(d => Path.Combine(MkfsFixtures.FixtureRoot, $"mkfs619-{spec.Name}{(spec.Devices > 1 ? $"-dev{d}" : "")}.img")).ToList();
        var tmps = paths.Select(p => p + ".partial").ToList();
        foreach (var tmp in tmps)
        {
            File.Delete(tmp);
            using var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write);
            fs.SetLength(spec.ImageSize);
        }
        string[] args = ["-f", "-L", spec.Name, "-U", spec.Uuid, .. spec.RootDir ? new[] { "--rootdir", MkfsFixtures.ContentDir } : [], .. spec.Args, .. tmps];
        Progs.V619.Run("mkfs.btrfs", args);
        for (int i = 0; i < paths.Count; i++)
            File.Move(tmps[i], paths[i], overwrite: true);
        return paths;
    }
}
