using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>Data checksums from the csum tree, one sector at a time (for the <c>map</c> verb's verdict on each copy).</summary>
public static class DataChecksums
{
    /// <summary>The stored checksum of the data sector that holds <paramref name="logical"/>, or null when no EXTENT_CSUM
    /// item covers it (nodatasum data, or no data there). Searches only the csum items that can reach the sector.</summary>
    public static byte[]? Find(BtrfsVolume volume, TreeRoot csumRoot, ulong logical)
    {
        int size = Checksum.Length(volume.CsumType);
        ulong sector = volume.SectorSize;
        ulong start = logical - logical % sector;
        // An item covers at most what fits in one leaf: (nodesize / csum size) sectors.
        ulong reach = (ulong)(volume.NodeSize / size) * sector;
        var from = new BtrfsKey(ObjectIds.ExtentCsum, (byte)ItemType.ExtentCsum, start - Math.Min(start, reach));
        var to = new BtrfsKey(ObjectIds.ExtentCsum, (byte)ItemType.ExtentCsum, start);
        var items = TreeSearch.Range(volume, csumRoot, from, to);
        for (int i = items.Count - 1; i >= 0; i--)
        {
            var it = items[i];
            ulong index = (start - it.Key.Offset) / sector;
            if ((ulong)it.Data.Length / (ulong)size > index) return it.Data.AsSpan((int)index * size, size).ToArray();
        }
        return null;
    }
}
