using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.TreesTests;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>110-112: which devices were given, against the DEV_ITEMs of the chunk tree.</summary>
public class DeviceDamageTests(ITestOutputHelper output)
{
    /// <summary>110 as an error: the kernel-written RAID1 pair with devid 2 left out. Every chunk has a stripe on it, so
    /// it is an error, reported once, without a bytenr; every tree block is still read from devid 1 (no 303, no 314: a
    /// copy on a missing device is not a bad copy).</summary>
    [Fact, Covers(FindingCode.DeviceMissing)]
    public void Raid1PairWithDevid2LeftOut()
    {
        var pair = ForgeFixtures.Images("kernel-raid1");
        string dev1 = pair.Single(p => { using var v = Open([p]); return v.Super.DevItem.DevId == 1; });
        var findings = Check([dev1]);
        AssertExactly(output, findings, Want.Error(FindingCode.DeviceMissing));
        Assert.Contains("devid 2", findings.Single(f => f.Code == FindingCode.DeviceMissing).Message);
        AssertCliFindsErrors([dev1], FindingCode.DeviceMissing);
    }

    /// <summary>110 as a warning: a second DEV_ITEM (devid 2, no bytes used) is added to the chunk tree and num_devices
    /// raised to 2, as after adding a device that holds no chunk yet; only devid 1 is given. Nothing needs devid 2.</summary>
    [ProgsFact, Covers(FindingCode.DeviceMissing)]
    public void EmptyDeviceLeftOut_IsAWarning()
    {
        using var img = Copy("crc32c");
        var devItem = ImageItems.All(img.Paths).Single(i => i.Tree.Id == ObjectIds.ChunkTree && i.Key.ItemType == ItemType.DevItem);
        Edit(img.Paths, (ed, _) =>
        {
            var d = (byte[])devItem.Data.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(DevItem.DevIdAt), 2);
            BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(DevItem.BytesUsedAt), 0);
            d[DevItem.UuidAt] ^= 0xff; // its own device uuid
            ed.Leaf(devItem.Leaf).InsertSorted(devItem.Key with { Offset = 2 }, d);
            ed.PatchSuper(s => BinaryPrimitives.WriteUInt64LittleEndian(s[Superblock.NumDevicesAt..], 2));
        });
        AssertExactly(output, Check(img.Paths), Want.Warning(FindingCode.DeviceMissing));
    }

    /// <summary>111: next to the image, a copy of it whose superblocks (every copy, checksums valid) claim devid 2, which no
    /// DEV_ITEM lists (a device removed from the filesystem whose superblock was never wiped). Same fsid, so it is
    /// assembled; the finding names that path. Nothing maps to devid 2, so nothing else changes.</summary>
    [ProgsFact, Covers(FindingCode.DeviceDuplicate)]
    public void ExtraDeviceWithAnUnlistedDevid()
    {
        using var a = Copy("crc32c");
        using var b = ImageForge.Copy(MkfsFixtures.Get("crc32c"), ForgeFixtures.TempDir);
        SuperblockDamage.PatchDevice(b.Path, s => BinaryPrimitives.WriteUInt64LittleEndian(s[(Superblock.DevItemAt + DevItem.DevIdAt)..], 2));
        var findings = Check([a.Path, b.Path]);
        AssertExactly(output, findings, Want.Error(FindingCode.DeviceDuplicate));
        Assert.Equal(b.Path, findings.Single(f => f.Code == FindingCode.DeviceDuplicate).Device);
    }

    /// <summary>112: the image cut right after the end of its last device extent (117 MiB of 512 MiB): every chunk is still
    /// whole and both superblock copies are intact, but the device is smaller than the DEV_ITEM's total_bytes.</summary>
    [ProgsFact, Covers(FindingCode.DeviceSizeMismatch)]
    public void ImageCutAfterItsLastDevExtent()
    {
        using var img = Copy("crc32c");
        ulong end, total;
        using (var vol = Open(img.Paths))
        {
            end = vol.Chunks.Chunks.SelectMany(c => c.Stripes.Select(s => s.Offset + c.StripeSize)).Max();
            total = vol.DevItems.Single().TotalBytes;
        }
        Assert.True(end > (ulong)Superblock.MirrorOffsets[1] + Superblock.Size && end < total);
        SuperblockDamage.Truncate(img.Path, (long)end);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.DeviceSizeMismatch));
        var f = findings.Single(x => x.Code == FindingCode.DeviceSizeMismatch);
        Assert.Equal(($">= {total}", end.ToString(), img.Path), (f.Expected, f.Found, f.Device));
    }
}
