using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Forge;

/// <summary><c>btrfs-forge DEFECT SOURCE_IMAGE OUT_IMAGE</c>: copies SOURCE to OUT sparsely and applies one defect to
/// OUT; <c>btrfs-forge --list</c> lists the defects. Test support: never needs btrfs-progs.</summary>
public static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args is ["--list"] or ["-l"])
        {
            int w = Defects.All.Max(d => d.Name.Length);
            foreach (var d in Defects.All) stdout.WriteLine($"{d.Name.PadRight(w)}  {d.CodesText}  [{d.Needs}]");
            return 0;
        }
        if (args is ["--help"] or ["-h"] || args.Length != 3)
        {
            (args.Length == 0 || args[0] is "--help" or "-h" ? stdout : stderr).WriteLine(
                "usage: forge DEFECT SOURCE_IMAGE OUT_IMAGE   copy SOURCE to OUT (sparse) and forge one defect into OUT\n" +
                "       forge --list                          list the defects and the findings each produces");
            return args is ["--help"] or ["-h"] ? 0 : 2;
        }
        var (name, source, output) = (args[0], args[1], args[2]);
        DefectSpec spec;
        try { spec = Defects.Get(name); }
        catch (ArgumentException e) { stderr.WriteLine($"forge: {e.Message.Split(" (Parameter")[0]}"); return 2; }
        if (!File.Exists(source)) { stderr.WriteLine($"forge: {source}: no such file"); return 2; }
        if (Path.GetFullPath(source) == Path.GetFullPath(output)) { stderr.WriteLine("forge: OUT_IMAGE must differ from SOURCE_IMAGE (the source is never modified)"); return 2; }
        try
        {
            using var img = Forge.CopyTo(source, output);
            var defect = spec.Apply(img);
            stdout.WriteLine($"{name}: {defect.Description}");
            foreach (var f in defect.AllExpected) stdout.WriteLine($"  expect {f}");
            return 0;
        }
        catch (Exception e) when (e is ForgeException or VolumeException or IOException)
        {
            stderr.WriteLine($"forge: {name}: {e.Message}");
            try { File.Delete(output); } catch (IOException) { } // no half-forged or unforged image left behind
            return 1;
        }
    }
}
