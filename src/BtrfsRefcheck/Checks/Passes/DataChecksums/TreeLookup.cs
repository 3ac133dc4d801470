using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Point look-ups in one tree through the volume's block cache, for the rare question (a bad data sector's
/// files): the items from a key on, or the last item at or before a key. Never throws for bad data: an unreadable or
/// malformed block is skipped.</summary>
internal static class TreeLookup
{
    /// <summary>The items with key &gt;= <paramref name="from"/>, in key order, while <paramref name="more"/> says so.</summary>
    public static List<(BtrfsKey Key, byte[] Data)> From(BtrfsVolume volume, ulong rootBytenr, BtrfsKey from, Func<BtrfsKey, bool> more, int max = 64)
    {
        var result = new List<(BtrfsKey, byte[])>();
        Walk(volume, rootBytenr, from, more, max, result, 0);
        return result;
    }

    /// <returns>False once the walk should stop (past the range or enough items).</returns>
    private static bool Walk(BtrfsVolume volume, ulong bytenr, BtrfsKey from, Func<BtrfsKey, bool> more, int max, List<(BtrfsKey, byte[])> result, int depth)
    {
        if (depth > Header.MaxLevel || volume.ReadTreeBlock(bytenr).Block is not { } block) return true;
        try
        {
            var view = block.View;
            if (view.IsLeaf)
            {
                for (int i = 0; i < view.Count; i++)
                {
                    if (!view.TryGetItem(i, out var key, out var data) || key.CompareTo(from) < 0) continue;
                    if (!more(key) || result.Count >= max) return false;
                    result.Add((key, data.ToArray()));
                }
                return true;
            }
            for (int i = view.Count == 0 ? 0 : view.SlotHolding(from); i < view.Count; i++)
                if (!Walk(volume, view.KeyPtr(i).BlockPtr, from, more, max, result, depth + 1)) return false;
            return true;
        }
        catch (BtrfsFormatException) { return true; }
    }

    /// <summary>The last item with key &lt;= <paramref name="at"/> that <paramref name="wanted"/> accepts, in the leaf
    /// that holds <paramref name="at"/>, or null.</summary>
    public static (BtrfsKey Key, byte[] Data)? LastAtOrBefore(BtrfsVolume volume, ulong rootBytenr, BtrfsKey at, Func<BtrfsKey, bool> wanted)
    {
        ulong bytenr = rootBytenr;
        for (int depth = 0; depth <= Header.MaxLevel; depth++)
        {
            if (volume.ReadTreeBlock(bytenr).Block is not { } block) return null;
            try
            {
                var view = block.View;
                if (view.Count == 0) return null;
                if (!view.IsLeaf)
                {
                    bytenr = view.KeyPtr(view.SlotHolding(at)).BlockPtr;
                    continue;
                }
                for (int i = view.Count - 1; i >= 0; i--)
                    if (view.TryGetItem(i, out var key, out var data) && key.CompareTo(at) <= 0 && wanted(key)) return (key, data.ToArray());
                return null;
            }
            catch (BtrfsFormatException) { return null; }
        }
        return null;
    }
}
