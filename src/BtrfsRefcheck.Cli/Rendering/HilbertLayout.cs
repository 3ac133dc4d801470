namespace BtrfsRefcheck.Cli.Rendering;

/// <summary>Places n cells (block groups, in address order) on a square grid along a Hilbert curve, as btrfs-heatmap
/// draws a filesystem: consecutive cells are always neighbours, so a range of addresses stays one patch. The first
/// cell is the bottom left corner; the curve walks up, right and down again.</summary>
internal static class HilbertLayout
{
    /// <summary>The grid's side: the smallest power of two whose square holds <paramref name="cells"/> (1 for 0 or 1).</summary>
    public static int Side(int cells)
    {
        int side = 1;
        while ((long)side * side < cells) side *= 2;
        return side;
    }

    /// <summary>Column and row (row 0 at the top) of cell <paramref name="d"/> on a grid of <paramref name="side"/>
    /// (a power of two; 0 &lt;= d &lt; side²).</summary>
    public static (int X, int Y) Cell(int side, int d)
    {
        int x = 0, y = 0, t = d;
        for (int s = 1; s < side; s *= 2)
        {
            int rx = 1 & (t / 2);
            int ry = 1 & (t ^ rx);
            if (ry == 0)
            {
                if (rx == 1) { x = s - 1 - x; y = s - 1 - y; }
                (x, y) = (y, x);
            }
            x += s * rx;
            y += s * ry;
            t /= 4;
        }
        return (x, side - 1 - y); // the curve's y grows upwards; a picture's row grows downwards
    }
}
