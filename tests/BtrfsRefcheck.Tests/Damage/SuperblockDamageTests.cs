using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>100-106 on a real mkfs image (crc32c, 512 MiB, so copies 0 at 64 KiB and 1 at 64 MiB exist; copy 2 at
/// 256 GiB does not). One superblock copy is damaged; the other stays good and is used.</summary>
public class SuperblockDamageTests(ITestOutputHelper output)
{
    private const ulong Copy0 = 64 * 1024, Copy1 = 64 * 1024 * 1024;

    /// <summary>100: copy 0 loses its magic (checksum recomputed, so only the magic is wrong). The volume opens with copy 1
    /// and reports copy 0, mirror 0, at 65536.</summary>
    [ProgsFact, Covers(FindingCode.SuperblockBadMagic)]
    public void BadMagicInCopy0_Copy1IsUsed()
    {
        using var img = Copy("crc32c");
        SuperblockDamage.PatchCopy(img.Path, 0, s => s[Superblock.MagicAt] ^= 0xff, fixChecksum: true);
        using (var vol = Open(img.Paths)) Assert.Equal(1, vol.ChosenCopy.Mirror);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockBadMagic, Copy0, mirror: 0));
        AssertCliFindsErrors(img.Paths, FindingCode.SuperblockBadMagic);
    }

    /// <summary>101: one byte of copy 1's label flipped, checksum left as it was.</summary>
    [ProgsFact, Covers(FindingCode.SuperblockBadChecksum)]
    public void BadChecksumInCopy1()
    {
        using var img = Copy("crc32c");
        SuperblockDamage.PatchCopy(img.Path, 1, s => s[Superblock.LabelAt] ^= 0x01, fixChecksum: false);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockBadChecksum, Copy1, mirror: 1));
    }

    /// <summary>102: copy 1 says it lives at 65536 (a copy of copy 0 written to 64 MiB), checksum valid.</summary>
    [ProgsFact, Covers(FindingCode.SuperblockBytenrMismatch)]
    public void BytenrOfCopy1IsCopy0s()
    {
        using var img = Copy("crc32c");
        SuperblockDamage.PatchCopy(img.Path, 1, s => BinaryPrimitives.WriteUInt64LittleEndian(s[Superblock.BytenrAt..], Copy0), fixChecksum: true);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockBytenrMismatch, Copy1, mirror: 1));
    }

    /// <summary>103: copy 1's csum_type is 7, which no kernel knows (its checksum cannot even be verified).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockUnknownChecksumType)]
    public void UnknownChecksumTypeInCopy1()
    {
        using var img = Copy("crc32c");
        SuperblockDamage.PatchCopy(img.Path, 1, s => BinaryPrimitives.WriteUInt16LittleEndian(s[Superblock.CsumTypeAt..], 7), fixChecksum: false);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockUnknownChecksumType, Copy1, mirror: 1));
    }

    /// <summary>104: copy 1 one generation behind (a mirror the last commit did not reach), checksum valid. A warning:
    /// the check itself is clean, so the CLI exits 0.</summary>
    [ProgsFact, Covers(FindingCode.SuperblockGenerationMismatch)]
    public void Copy1OneGenerationBehind_IsAWarningOnly()
    {
        using var img = Copy("crc32c");
        ulong gen;
        using (var vol = Open(img.Paths)) gen = vol.Super.Generation;
        SuperblockDamage.PatchCopy(img.Path, 1, s => BinaryPrimitives.WriteUInt64LittleEndian(s[Superblock.GenerationAt..], gen - 1), fixChecksum: true);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Warning(FindingCode.SuperblockGenerationMismatch, Copy1, mirror: 1));
        var f = findings.Single(x => x.Code == FindingCode.SuperblockGenerationMismatch);
        Assert.Equal((gen.ToString(), (gen - 1).ToString()), (f.Expected, f.Found));
        var (exit, stdout, _) = RunCli("check", img.Path);
        Assert.Equal(0, exit);
        Assert.Contains("[104 SuperblockGenerationMismatch]", stdout);
    }

    /// <summary>105: log_root_level 8 in every copy (log_root is 0, so nothing else reads it): reported once, for the copy
    /// in use.</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void LogRootLevel8()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblock(s => s[Superblock.LogRootLevelAt] = 8);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.SuperblockFieldInvalid, Copy0));
        Assert.Equal("8", findings.Single(f => f.Code == FindingCode.SuperblockFieldInvalid).Found);
        AssertCliFindsErrors(img.Paths, FindingCode.SuperblockFieldInvalid);
    }

    /// <summary>105 with what it implies: num_devices 0 is invalid in itself, and it also differs from the one DEV_ITEM
    /// of the chunk tree (716, at the copy in use as well).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void NumDevicesZero_AlsoDiffersFromTheDevItems()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblockU64(Superblock.NumDevicesAt, 0);
        AssertExactly(output, Check(img.Paths),
            Want.Error(FindingCode.SuperblockFieldInvalid, Copy0),
            Want.Error(FindingCode.SuperNumDevicesMismatch, Copy0));
    }

    /// <summary>106: the image is cut 2 KiB into the copy at 64 MiB (512 MiB fixture: DEV_ITEM and superblock say
    /// 512 MiB). What else the cut implies, each reported once:
    /// <list type="bullet">
    /// <item>112: the device is smaller than its DEV_ITEM's total_bytes;</item>
    /// <item>717 for every chunk stripe that now ends past the end of the file: on crc32c both DUP stripes of the metadata
    /// chunk (stripe 0 runs from 37 MiB to 69 MiB, through the copy at 64 MiB the allocator keeps free) and the two data
    /// chunks placed above 100 MiB; one finding per stripe, at the chunk's logical start.</item>
    /// </list>
    /// Nothing is unreadable: every tree block's copy 0 lies below 40 MiB (asserted), and copy 1 is never needed.</summary>
    [ProgsFact, Covers(FindingCode.SuperblockCopyTruncated)]
    public void ImageCutInsideCopy1()
    {
        using var img = Copy("crc32c");
        long cut = (long)Copy1 + 2048;
        var beyond = new List<Want>();
        using (var vol = Open(img.Paths))
        {
            var scan = ImageScan.Run(vol);
            foreach (var b in scan.Blocks.Keys)
                Assert.True(vol.Chunks.Find(b)!.Map(b, 0, out _).Offset + vol.NodeSize <= (ulong)cut, $"block {b}'s copy 0 would be cut too");
            foreach (var c in vol.Chunks.Chunks)
                foreach (var s in c.Stripes)
                    if (s.Offset + c.StripeSize > (ulong)cut) beyond.Add(Want.Error(FindingCode.ChunkBeyondDevice, c.Logical));
        }
        Assert.Equal(4, beyond.Count); // metadata DUP x2, data x2 (see above): the fixture's layout, if mkfs changes it this says so
        SuperblockDamage.Truncate(img.Path, cut);
        AssertExactly(output, Check(img.Paths),
            [Want.Error(FindingCode.SuperblockCopyTruncated, Copy1, mirror: 1), Want.Error(FindingCode.DeviceSizeMismatch), .. beyond]);
        AssertCliFindsErrors(img.Paths, FindingCode.SuperblockCopyTruncated);
    }
}
