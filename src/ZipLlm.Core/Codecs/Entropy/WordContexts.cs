using System.Runtime.CompilerServices;

namespace ZipLlm.Codecs.Entropy;

/// <summary>
/// A context computed from a 16-bit base word: a bit field of it, less an offset, clamped to the contexts there are
/// (<c>clamp(((word &gt;&gt; Shift) &amp; Mask) - Offset, 0, contextCount - 1)</c>), such as a float's exponent bucket.
/// </summary>
/// <param name="Shift">Where the field starts.</param>
/// <param name="Mask">The field's bits, after the shift.</param>
/// <param name="Offset">Subtracted from the field.</param>
internal readonly record struct WordContexts(int Shift, int Mask, int Offset)
{
    /// <summary>The context of <paramref name="word"/> among <paramref name="contextCount"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte Of(ushort word, int contextCount) => (byte)Math.Clamp(((word >> Shift) & Mask) - Offset, 0, contextCount - 1);
}
