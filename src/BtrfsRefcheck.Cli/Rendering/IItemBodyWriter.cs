using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Cli.Rendering;

/// <summary>Optional extension of <see cref="IItemWriter"/> for writers that frame each item body: a JSON writer
/// opens and closes the body object (and writes its problems), a text writer ends its pending line.
/// <see cref="ItemDecoder.Decode"/> calls <see cref="BeginItem"/> before the first field and <see cref="EndItem"/>
/// after the last, also when decoding stopped on a problem, so callers cannot forget to close a body.</summary>
public interface IItemBodyWriter : IItemWriter
{
    /// <summary>An item body starts. A writer whose body is already open (the caller began it) ignores this.</summary>
    void BeginItem();

    /// <summary>The item body is complete.</summary>
    void EndItem();
}
