using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

using ZipLlm.Codecs.Entropy;

namespace ZipLlm.Codecs.Kernels;

/// <summary>
/// The ordered difference of 16-bit float words against their base's (<see cref="ChunkTransform.OrderedDifference"/>):
/// each word's sign-magnitude bits are mapped to a monotone integer, so that neighbouring values are neighbouring
/// integers across zero too, and the difference to the base's integer is zigzagged (0, -1, 1, -2 ... to 0, 1, 2, 3 ...).
/// A finetune moves most weights by a few ulps, so most differences are small; the XOR of the same words flips
/// many more bits whenever a carry crosses the mantissa. Arithmetic is modulo 2^16, so every word, NaN, infinity and
/// negative zero included, comes back exactly.
/// <para>
/// Each word becomes one symbol: its zigzagged difference when below <see cref="Escape"/>, else <see cref="Escape"/>
/// with the difference written as a little-endian u16 to the escape stream. The context of a symbol is the base word's
/// exponent, clamped to <see cref="ContextCount"/> buckets: how far a weight moves in ulps depends on its magnitude.
/// </para>
/// </summary>
internal static class OrderedDifference
{
    /// <summary>The symbol that says "the difference is in the escape stream".</summary>
    public const byte Escape = 255;

    /// <summary>Number of contexts: exponents below the lowest bucket share bucket 0, those above the highest share the last.</summary>
    public const int ContextCount = 16;

    /// <summary>Maps a word's sign-magnitude bits to a monotone integer (-max ... -0, +0 ... +max become 0 ... 65535).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToOrdered(ushort word) => (ushort)(word ^ (0x8000 | (((short)word >> 15) & 0x7FFF)));

    /// <summary>Inverts <see cref="ToOrdered(ushort)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromOrdered(ushort ordered) => (ushort)(ordered ^ (0x8000 | (~((short)ordered >> 15) & 0x7FFF)));

    /// <summary>The context bucket of a base word in <paramref name="layout"/>: its exponent, offset so that weights of magnitude 2^-15 to 1 get a bucket each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte ContextOf(ushort baseWord, ElementLayout layout) => ContextRule(layout).Of(baseWord, ContextCount);

    /// <summary>
    /// The rule <see cref="ContextOf"/> follows, for a decoder that computes the contexts itself: BF16's 8 exponent bits
    /// at 14..7 (bias 127) less 112, F16's 5 at 14..10 (bias 15). The last bucket holds magnitudes of 1 and up.
    /// </summary>
    public static WordContexts ContextRule(ElementLayout layout) =>
        layout == ElementLayout.Half ? new WordContexts(10, 0x1F, 0) : new WordContexts(7, 0xFF, 112);

    /// <summary>
    /// Codes <paramref name="words"/> against <paramref name="baseWords"/> (both whole little-endian 16-bit words): one
    /// symbol and one context a word, and the escaped differences.
    /// </summary>
    /// <returns>Bytes written to <paramref name="escapes"/> (two an escaped word).</returns>
    /// <exception cref="ArgumentException">Lengths are odd or inconsistent.</exception>
    public static int Forward(ReadOnlySpan<byte> words, ReadOnlySpan<byte> baseWords, ElementLayout layout,
        Span<byte> symbols, Span<byte> contexts, Span<byte> escapes) =>
        Forward(words, baseWords, layout, symbols, contexts, escapes, vectorized: true);

    /// <summary><see cref="Forward(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ElementLayout, Span{byte}, Span{byte}, Span{byte})"/>, with the vector path on or off (the scalar twin, for tests).</summary>
    internal static int Forward(ReadOnlySpan<byte> words, ReadOnlySpan<byte> baseWords, ElementLayout layout,
        Span<byte> symbols, Span<byte> contexts, Span<byte> escapes, bool vectorized)
    {
        int count = CheckLengths(words, baseWords, symbols, contexts);
        if (escapes.Length < 2 * count)
        {
            throw new ArgumentException("The escape buffer must hold two bytes a word.", nameof(escapes));
        }
        ReadOnlySpan<ushort> ft = MemoryMarshal.Cast<byte, ushort>(words);
        ReadOnlySpan<ushort> bs = MemoryMarshal.Cast<byte, ushort>(baseWords);
        int escaped = 0, i = 0;
        if (vectorized && Vector256.IsHardwareAccelerated && BitConverter.IsLittleEndian)
        {
            int step = Vector256<ushort>.Count;
            Span<ushort> lanes = stackalloc ushort[Vector256<ushort>.Count];
            for (; i + step <= count; i += step)
            {
                Vector256<ushort> b = Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(bs), (nuint)i);
                Vector256<ushort> d = ToOrdered(Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(ft), (nuint)i)) - ToOrdered(b);
                Vector256<ushort> zigzag = (d << 1) ^ Vector256.ShiftRightArithmetic(d.AsInt16(), 15).AsUInt16();
                ContextsOf(b, layout).StoreUnsafe(ref MemoryMarshal.GetReference(contexts), (nuint)i);
                Vector256<ushort> symbol = Vector256.Min(zigzag, Vector256.Create((ushort)Escape));
                Vector128.Narrow(symbol.GetLower(), symbol.GetUpper()).StoreUnsafe(ref MemoryMarshal.GetReference(symbols), (nuint)i);
                uint escaping = Vector256.Equals(symbol, Vector256.Create((ushort)Escape)).ExtractMostSignificantBits();
                if (escaping != 0)
                {
                    // The escaped words' differences, in word order (a far finetune escapes most words: no scalar pass for them).
                    zigzag.StoreUnsafe(ref MemoryMarshal.GetReference(lanes));
                    do
                    {
                        ushort value = lanes[BitOperations.TrailingZeroCount(escaping)];
                        escapes[escaped++] = (byte)value;
                        escapes[escaped++] = (byte)(value >> 8);
                        escaping &= escaping - 1;
                    }
                    while (escaping != 0);
                }
            }
        }
        return ForwardScalar(ft, bs, layout, symbols, contexts, escapes, i, count, escaped);
    }

    /// <summary>The contexts of <paramref name="baseWords"/>, as <see cref="Forward(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ElementLayout, Span{byte}, Span{byte}, Span{byte})"/> computes them: the decoder's first step.</summary>
    public static void Contexts(ReadOnlySpan<byte> baseWords, ElementLayout layout, Span<byte> contexts) =>
        Contexts(baseWords, layout, contexts, vectorized: true);

    /// <summary><see cref="Contexts(ReadOnlySpan{byte}, ElementLayout, Span{byte})"/>, with the vector path on or off.</summary>
    internal static void Contexts(ReadOnlySpan<byte> baseWords, ElementLayout layout, Span<byte> contexts, bool vectorized)
    {
        ReadOnlySpan<ushort> bs = MemoryMarshal.Cast<byte, ushort>(baseWords);
        if (contexts.Length != bs.Length || baseWords.Length % 2 != 0)
        {
            throw new ArgumentException("There must be one context for each base word.", nameof(contexts));
        }
        int i = 0;
        if (vectorized && Vector256.IsHardwareAccelerated && BitConverter.IsLittleEndian)
        {
            for (; i + Vector256<ushort>.Count <= bs.Length; i += Vector256<ushort>.Count)
            {
                ContextsOf(Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(bs), (nuint)i), layout)
                    .StoreUnsafe(ref MemoryMarshal.GetReference(contexts), (nuint)i);
            }
        }
        for (; i < bs.Length; i++)
        {
            contexts[i] = ContextOf(bs[i], layout);
        }
    }

    /// <summary>Inverts <see cref="Forward(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ElementLayout, Span{byte}, Span{byte}, Span{byte})"/>: rebuilds the words from the symbols, the escaped differences and the base.</summary>
    /// <returns>Bytes of <paramref name="escapes"/> used.</returns>
    /// <exception cref="InvalidDataException">The symbols escape more words than <paramref name="escapes"/> holds.</exception>
    public static int Inverse(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> escapes, ReadOnlySpan<byte> baseWords, Span<byte> words) =>
        Inverse(symbols, escapes, baseWords, words, vectorized: true);

    /// <summary><see cref="Inverse(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, Span{byte})"/>, with the vector path on or off.</summary>
    internal static int Inverse(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> escapes, ReadOnlySpan<byte> baseWords, Span<byte> words, bool vectorized)
    {
        int count = symbols.Length;
        if (baseWords.Length != 2 * count || words.Length != 2 * count)
        {
            throw new ArgumentException("Base and output must hold one word a symbol.", nameof(words));
        }
        ReadOnlySpan<ushort> bs = MemoryMarshal.Cast<byte, ushort>(baseWords);
        Span<ushort> output = MemoryMarshal.Cast<byte, ushort>(words);
        int used = 0, i = 0;
        if (vectorized && Vector256.IsHardwareAccelerated && BitConverter.IsLittleEndian)
        {
            int step = Vector256<ushort>.Count;
            Span<ushort> lanes = stackalloc ushort[Vector256<ushort>.Count];
            for (; i + step <= count; i += step)
            {
                Vector128<byte> s = Vector128.LoadUnsafe(ref MemoryMarshal.GetReference(symbols), (nuint)i);
                (Vector128<ushort> low, Vector128<ushort> high) = Vector128.Widen(s);
                Vector256<ushort> zigzag = Vector256.Create(low, high);
                uint escaping = Vector128.Equals(s, Vector128.Create(Escape)).ExtractMostSignificantBits();
                if (escaping != 0)
                {
                    // The escaped words' differences, in word order, into their lanes; the rest stay in the vector path.
                    zigzag.StoreUnsafe(ref MemoryMarshal.GetReference(lanes));
                    do
                    {
                        if (escapes.Length - used < 2)
                        {
                            throw new InvalidDataException("more escaped differences than the escape stream holds.");
                        }
                        lanes[BitOperations.TrailingZeroCount(escaping)] = (ushort)(escapes[used] | escapes[used + 1] << 8);
                        used += 2;
                        escaping &= escaping - 1;
                    }
                    while (escaping != 0);
                    zigzag = Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(lanes));
                }
                Vector256<ushort> d = (zigzag >> 1) ^ (Vector256<ushort>.Zero - (zigzag & Vector256<ushort>.One));
                Vector256<ushort> b = Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(bs), (nuint)i);
                FromOrdered(ToOrdered(b) + d).StoreUnsafe(ref MemoryMarshal.GetReference(output), (nuint)i);
            }
        }
        return InverseScalar(symbols, escapes, bs, output, i, count, used);
    }

    private static int ForwardScalar(ReadOnlySpan<ushort> ft, ReadOnlySpan<ushort> bs, ElementLayout layout,
        Span<byte> symbols, Span<byte> contexts, Span<byte> escapes, int from, int to, int escaped)
    {
        for (int i = from; i < to; i++)
        {
            ushort b = bs[i];
            int d = (short)(ToOrdered(ft[i]) - ToOrdered(b));
            ushort zigzag = (ushort)((d << 1) ^ (d >> 31));
            contexts[i] = ContextOf(b, layout);
            if (zigzag < Escape)
            {
                symbols[i] = (byte)zigzag;
            }
            else
            {
                symbols[i] = Escape;
                escapes[escaped++] = (byte)zigzag;
                escapes[escaped++] = (byte)(zigzag >> 8);
            }
        }
        return escaped;
    }

    private static int InverseScalar(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> escapes, ReadOnlySpan<ushort> bs, Span<ushort> output,
        int from, int to, int used)
    {
        for (int i = from; i < to; i++)
        {
            int zigzag = symbols[i];
            if (zigzag == Escape)
            {
                if (escapes.Length - used < 2)
                {
                    throw new InvalidDataException("more escaped differences than the escape stream holds.");
                }
                zigzag = escapes[used] | escapes[used + 1] << 8;
                used += 2;
            }
            int d = (zigzag >> 1) ^ -(zigzag & 1);
            output[i] = FromOrdered((ushort)(ToOrdered(bs[i]) + d));
        }
        return used;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> ToOrdered(Vector256<ushort> words) =>
        words ^ (Vector256.Create((ushort)0x8000) | (Vector256.ShiftRightArithmetic(words.AsInt16(), 15).AsUInt16() & Vector256.Create((ushort)0x7FFF)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> FromOrdered(Vector256<ushort> ordered) =>
        ordered ^ (Vector256.Create((ushort)0x8000) | (~Vector256.ShiftRightArithmetic(ordered.AsInt16(), 15).AsUInt16() & Vector256.Create((ushort)0x7FFF)));

    /// <summary><see cref="ContextOf"/> of sixteen base words, as bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> ContextsOf(Vector256<ushort> baseWords, ElementLayout layout)
    {
        Vector256<short> exponent = layout == ElementLayout.Half
            ? ((baseWords >> 10) & Vector256.Create((ushort)0x1F)).AsInt16()
            : ((baseWords >> 7) & Vector256.Create((ushort)0xFF)).AsInt16() - Vector256.Create((short)112);
        Vector256<ushort> clamped = Vector256.Min(Vector256.Max(exponent, Vector256<short>.Zero), Vector256.Create((short)(ContextCount - 1))).AsUInt16();
        return Vector128.Narrow(clamped.GetLower(), clamped.GetUpper());
    }

    private static int CheckLengths(ReadOnlySpan<byte> words, ReadOnlySpan<byte> baseWords, Span<byte> symbols, Span<byte> contexts)
    {
        if (words.Length % 2 != 0 || baseWords.Length != words.Length || symbols.Length != words.Length / 2 || contexts.Length != symbols.Length)
        {
            throw new ArgumentException("Words and base must be whole and as long as each other, with one symbol and context a word.");
        }
        return symbols.Length;
    }
}
