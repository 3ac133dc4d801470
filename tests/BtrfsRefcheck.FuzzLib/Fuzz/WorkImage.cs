using Microsoft.Win32.SafeHandles;

namespace BtrfsRefcheck.Tests.Fuzz;

/// <summary>A private, writable sparse copy of a fixture's device files that the fuzzer mutates and then restores:
/// every write and truncation is journaled (the bytes it replaced, the length it cut) and <see cref="Restore"/>
/// undoes them in reverse order, so one copy serves thousands of cases without re-copying 512 MiB each time.</summary>
public sealed class WorkImage : IDisposable
{
    private readonly FuzzFixture _fixture;
    private readonly string _dir;
    private readonly SafeFileHandle?[] _handles;
    private readonly List<Action> _undo = [];

    public IReadOnlyList<string> Paths { get; }

    public WorkImage(FuzzFixture fixture, string dir)
    {
        _fixture = fixture;
        _dir = dir;
        Directory.CreateDirectory(dir);
        var paths = new List<string>();
        foreach (var d in fixture.Devices)
        {
            var dest = Path.Combine(dir, Path.GetFileName(d.Path));
            Oracle.SparseFile.Copy(d.Path, dest);
            paths.Add(dest);
        }
        Paths = paths;
        _handles = new SafeFileHandle?[paths.Count];
    }

    /// <summary>True when something was written since the last <see cref="Restore"/>.</summary>
    public bool Dirty => _undo.Count > 0;

    private SafeFileHandle Handle(int dev) =>
        _handles[dev] ??= File.OpenHandle(Paths[dev], FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);

    public long Length(int dev) => RandomAccess.GetLength(Handle(dev));

    /// <summary>Reads bytes of device <paramref name="dev"/> (zeros past the end of the file).</summary>
    public void Read(int dev, long offset, Span<byte> dest)
    {
        dest.Clear();
        long len = Length(dev);
        if (offset >= len) return;
        int n = (int)Math.Min(dest.Length, len - offset);
        int done = 0;
        while (done < n)
        {
            int got = RandomAccess.Read(Handle(dev), dest.Slice(done, n - done), offset + done);
            if (got <= 0) break;
            done += got;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> at <paramref name="offset"/> of device <paramref name="dev"/> (clipped to
    /// the file: the fuzzer never grows an image) and journals what they replaced. Returns how many bytes changed.</summary>
    public int Write(int dev, long offset, ReadOnlySpan<byte> bytes)
    {
        long len = Length(dev);
        if (offset >= len || bytes.IsEmpty) return 0;
        int n = (int)Math.Min(bytes.Length, len - offset);
        var old = new byte[n];
        Read(dev, offset, old);
        int changed = 0;
        for (int i = 0; i < n; i++) if (old[i] != bytes[i]) changed++;
        if (changed == 0) return 0;
        RandomAccess.Write(Handle(dev), bytes[..n], offset);
        _undo.Add(() => RandomAccess.Write(Handle(dev), old, offset));
        return changed;
    }

    /// <summary>Cuts device <paramref name="dev"/> at <paramref name="newLength"/>; undone by growing the file again and
    /// copying the cut part back from the pristine fixture (sparsely).</summary>
    public void Truncate(int dev, long newLength)
    {
        long len = Length(dev);
        if (newLength >= len) return;
        RandomAccess.SetLength(Handle(dev), newLength);
        string pristine = _fixture.Devices[dev].Path;
        _undo.Add(() =>
        {
            var h = Handle(dev);
            RandomAccess.SetLength(h, len);
            using var src = File.OpenHandle(pristine, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var buf = new byte[1 << 16];
            for (long at = newLength; at < len;)
            {
                int n = (int)Math.Min(buf.Length, len - at);
                int got = RandomAccess.Read(src, buf.AsSpan(0, n), at);
                if (got <= 0) break;
                if (buf.AsSpan(0, got).IndexOfAnyExcept((byte)0) >= 0) RandomAccess.Write(h, buf.AsSpan(0, got), at);
                at += got;
            }
        });
    }

    /// <summary>Undoes every change since the last restore, newest first.</summary>
    public void Restore()
    {
        for (int i = _undo.Count - 1; i >= 0; i--) _undo[i]();
        _undo.Clear();
    }

    /// <summary>Copies the current (mutated) device files into <paramref name="dir"/>, sparsely; returns their paths.</summary>
    public IReadOnlyList<string> SaveTo(string dir)
    {
        Directory.CreateDirectory(dir);
        var saved = new List<string>();
        foreach (var p in Paths)
        {
            var dest = Path.Combine(dir, Path.GetFileName(p));
            Oracle.SparseFile.Copy(p, dest);
            saved.Add(dest);
        }
        return saved;
    }

    /// <summary>True when every device file equals the pristine fixture byte for byte (a self-test of the journal).</summary>
    public bool EqualsPristine(out string? difference)
    {
        difference = null;
        var a = new byte[1 << 20];
        var b = new byte[1 << 20];
        for (int d = 0; d < Paths.Count; d++)
        {
            using var src = File.OpenHandle(_fixture.Devices[d].Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            long len = RandomAccess.GetLength(src);
            if (Length(d) != len) { difference = $"{Paths[d]}: length {Length(d)}, pristine {len}"; return false; }
            for (long at = 0; at < len; at += a.Length)
            {
                int n = (int)Math.Min(a.Length, len - at);
                RandomAccess.Read(src, a.AsSpan(0, n), at);
                Read(d, at, b.AsSpan(0, n));
                if (!a.AsSpan(0, n).SequenceEqual(b.AsSpan(0, n)))
                {
                    difference = $"{Paths[d]}: differs in [{at}, {at + n})";
                    return false;
                }
            }
        }
        return true;
    }

    public void Dispose()
    {
        foreach (var h in _handles) h?.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
