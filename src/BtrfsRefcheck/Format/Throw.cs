using System.Diagnostics.CodeAnalysis;

namespace BtrfsRefcheck.Format;

/// <summary>Raised when on-disk bytes cannot be decoded (a length or offset points outside its buffer, a
/// value is outside what the format allows). The tree and check layers turn it into findings; it never
/// reaches the user as a stack trace.</summary>
public sealed class BtrfsFormatException(string message) : Exception(message);

internal static class Throw
{
    [DoesNotReturn]
    public static void Truncated(string what, long need, long have) =>
        throw new BtrfsFormatException($"{what}: need {need} bytes, have {have}");

    [DoesNotReturn]
    public static void OutOfBounds(string what, long offset, long count, long length) =>
        throw new BtrfsFormatException($"{what}: range [{offset}, {offset + count}) outside buffer of {length} bytes");

    [DoesNotReturn]
    public static void Invalid(string message) => throw new BtrfsFormatException(message);
}
