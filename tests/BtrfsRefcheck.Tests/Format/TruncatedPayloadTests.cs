using BtrfsRefcheck.Cli.Rendering;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Tests.Format;

/// <summary>An item payload cut short, of every item type the dump printer knows, is read through Format's views and
/// <c>Le</c>, which raise the format's own exception (<see cref="BtrfsFormatException"/>); the printer turns that into a
/// problem and the raw bytes. It catches nothing else: an ArgumentOutOfRangeException (a span sliced past its end)
/// would leave <see cref="ItemDecoder.Decode"/> and fail this test.</summary>
public class TruncatedPayloadTests
{
    public static TheoryData<ItemType> Types()
    {
        var data = new TheoryData<ItemType>();
        foreach (var t in Enum.GetValues<ItemType>()) data.Add(t);
        return data;
    }

    /// <summary>Zeros, all ones, and a pattern (lengths and counts read from it point anywhere).</summary>
    private static IEnumerable<byte[]> Payloads()
    {
        yield return new byte[600];
        yield return Enumerable.Repeat((byte)0xff, 600).ToArray();
        yield return Enumerable.Range(0, 600).Select(i => (byte)(i * 37 + 11)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void EveryTruncationIsTheFormatsOwnException(ItemType type)
    {
        int problems = 0;
        foreach (var full in Payloads())
            foreach (ulong offset in new ulong[] { 0, 4096 })
                for (int n = 0; n <= full.Length; n++)
                {
                    var w = Dec.Run(new BtrfsKey(256, (byte)type, offset), full[..n]); // any other exception fails here
                    problems += w.Problems.Count;
                }
        // (a Merkle tree block and a string are bytes of any length: nothing to cut short)
        if (type is not (ItemType.VerityMerkleItem or ItemType.StringItem))
            Assert.True(problems > 0, $"{type}: no truncation of any payload was reported as a problem");
    }

    [Fact]
    public void AShortPayloadRaisesBtrfsFormatException()
    {
        Assert.Throws<BtrfsFormatException>(() => Le.U64(new byte[7], 0));
        Assert.Throws<BtrfsFormatException>(() => Le.U32(new byte[8], 5));
        Assert.Throws<BtrfsFormatException>(() => new BtrfsRefcheck.Format.Items.ExtentItemV0(new byte[3]).Refs);
    }
}
