using System.Buffers.Binary;
using ZipLlm.Codecs.Entropy;

namespace ZipLlm.Codecs.Kernels;

/// <summary>
/// The contexts of a context XOR (<see cref="ChunkTransform.ContextXor"/>): each base word's exponent, bucketed as the
/// ordered difference buckets it (<see cref="OrderedDifference.ContextRule"/>, <see cref="OrderedDifference.ContextCount"/>
/// buckets). A 32-bit single's top half is a BF16 word, so an F32 base word takes the BF16 rule on its bits 31..16.
/// </summary>
internal static class BaseExponents
{
    /// <summary>Number of contexts.</summary>
    public const int ContextCount = OrderedDifference.ContextCount;

    /// <summary>The rule a 16-bit base word's context follows in <paramref name="layout"/>; an F32 word's top half follows the BF16 rule.</summary>
    public static WordContexts Rule(ElementLayout layout) =>
        OrderedDifference.ContextRule(layout == ElementLayout.Half ? ElementLayout.Half : ElementLayout.Word16);

    /// <summary>
    /// Writes the context of each whole word of <paramref name="baseWords"/> (words of <paramref name="layout"/>, little-endian)
    /// to <paramref name="contexts"/>, one a word.
    /// </summary>
    /// <exception cref="ArgumentException">The layout has no exponent, or the lengths do not match.</exception>
    public static void Contexts(ElementLayout layout, ReadOnlySpan<byte> baseWords, Span<byte> contexts)
    {
        if (layout.IsHalfWord())
        {
            OrderedDifference.Contexts(baseWords, layout, contexts);
            return;
        }
        if (layout != ElementLayout.Word32)
        {
            throw new ArgumentException($"A {layout} word has no exponent.", nameof(layout));
        }
        if (baseWords.Length % 4 != 0 || contexts.Length != baseWords.Length / 4)
        {
            throw new ArgumentException("There must be one context for each base word.", nameof(contexts));
        }
        WordContexts rule = Rule(layout);
        for (int i = 0; i < contexts.Length; i++)
        {
            contexts[i] = rule.Of(BinaryPrimitives.ReadUInt16LittleEndian(baseWords[(4 * i + 2)..]), ContextCount);
        }
    }
}
