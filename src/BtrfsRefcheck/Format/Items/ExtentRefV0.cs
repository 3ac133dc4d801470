namespace BtrfsRefcheck.Format.Items;

/// <summary>EXTENT_REF_V0: the back-ref format before mixed back-refs (pre-2.6.31 kernels): root u64,
/// generation u64, objectid u64, count u32 (28 bytes). Current kernels refuse to mount with these; they are only
/// shown raw.</summary>
public static class ExtentRefV0
{
    public const int Size = 28;
}
