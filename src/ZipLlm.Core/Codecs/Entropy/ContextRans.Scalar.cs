using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ZipLlm.Codecs.Entropy;

// The coding loops one lane at a time: the scalar twin of the vector paths, and the tails they leave; the branch-free steps.
internal sealed partial class ContextRans
{
    /// <summary>
    /// Codes the symbols into the lanes' <paramref name="states"/> (the words into the words scratch): whole rounds by the
    /// AVX2 encoder when <paramref name="vector"/>, the symbols past the last whole round here, and every round when not.
    /// </summary>
    /// <returns>Where the written words start in the words scratch.</returns>
    private int EncodeSymbols(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, Span<uint> states, bool vector)
    {
        int lanes = states.Length;
        // Code backwards, so that the decoder reads forwards; words go to the end of the scratch and move down.
        Grow(ref _words, symbols.Length + 2 * lanes);
        states.Fill(Lower);
        ref ushort words = ref MemoryMarshal.GetArrayDataReference(_words);
        int top = _words.Length;
        ref EncodeSymbol table = ref MemoryMarshal.GetArrayDataReference(_encode);
        ref byte symbol = ref MemoryMarshal.GetReference(symbols);
        ref byte context = ref MemoryMarshal.GetReference(contexts);
        bool contextual = !contexts.IsEmpty;
        int n = symbols.Length, whole = n & ~(lanes - 1);
        ref uint state0 = ref MemoryMarshal.GetReference(states);
        // The symbols past the last whole round first (they are coded last-to-first), then whole rounds, the last lane to 0.
        for (int i = n - 1; i >= whole; i--)
        {
            int key = (contextual ? Unsafe.Add(ref context, i) << 8 : 0) | Unsafe.Add(ref symbol, i);
            ref uint x = ref Unsafe.Add(ref state0, i & (lanes - 1));
            x = Put(x, in Unsafe.Add(ref table, key), ref words, ref top);
        }
        int g = whole - lanes;
        if (vector)
        {
            g = EncodeRoundsAvx2(symbols, contexts, whole, states, ref top);
        }
        for (; g >= 0; g -= lanes)
        {
            ref byte sym = ref Unsafe.Add(ref symbol, g);
            ref byte ctx = ref Unsafe.Add(ref context, contextual ? g : 0);
            for (int j = lanes - 1; j >= 0; j--)
            {
                int key = (contextual ? Unsafe.Add(ref ctx, j) << 8 : 0) | Unsafe.Add(ref sym, j);
                ref uint x = ref Unsafe.Add(ref state0, j);
                x = Put(x, in Unsafe.Add(ref table, key), ref words, ref top);
            }
        }
        return top;
    }

    /// <summary>
    /// Decodes the symbols from the lanes' <paramref name="states"/> and the renormalization <paramref name="words"/>:
    /// whole rounds by the vector decoder of <paramref name="path"/>, then the rest here (every symbol on the scalar path).
    /// </summary>
    /// <returns>Words read.</returns>
    private int DecodeSymbols(ReadOnlySpan<ushort> words, ReadOnlySpan<byte> contexts, ReadOnlySpan<ushort> baseWords, WordContexts rule, int contextCount,
        Span<uint> states, Span<byte> destination, RansPath path)
    {
        int n = destination.Length, read = 0, i = 0;
        if (!SupportedPaths.Contains(path))
        {
            throw new PlatformNotSupportedException($"This processor cannot decode by the {path} path.");
        }
        if (path == RansPath.Avx512)
        {
            (i, read) = DecodeRounds<Avx512Round>(words, contexts, baseWords, rule, contextCount, states, destination);
        }
        else if (path == RansPath.Avx2)
        {
            (i, read) = DecodeRounds<Avx2Round>(words, contexts, baseWords, rule, contextCount, states, destination);
        }
        if (destination.Length > 0 && baseWords.Length == destination.Length && i < n)
        {
            // What the vector rounds left (a tail, or rounds near the end of the words) decodes from contexts computed first.
            Grow(ref _wordContexts, n);
            for (int k = i; k < n; k++)
            {
                _wordContexts[k] = rule.Of(baseWords[k], contextCount);
            }
            contexts = _wordContexts.AsSpan(0, n);
        }
        ref uint table = ref MemoryMarshal.GetArrayDataReference(_decode);
        ref ushort word = ref MemoryMarshal.GetReference(words);
        ref byte output = ref MemoryMarshal.GetReference(destination);
        ref byte context = ref MemoryMarshal.GetReference(contexts);
        bool contextual = !contexts.IsEmpty;
        int lanes = states.Length;
        ref uint state0 = ref MemoryMarshal.GetReference(states);
        // The fast loop: a round of one symbol a lane, while a word remains for every lane (a round reads at most one a lane).
        for (; i + lanes <= n && words.Length - read >= lanes; i += lanes)
        {
            for (int j = 0; j < lanes; j++)
            {
                Step(ref Unsafe.Add(ref state0, j), ref table, contextual ? Unsafe.Add(ref context, i + j) : 0, ref Unsafe.Add(ref output, i + j), ref word, ref read);
            }
        }
        // The rest, one checked symbol at a time.
        for (; i < n; i++)
        {
            ref uint x = ref states[i & (lanes - 1)];
            uint e = Unsafe.Add(ref table, ((contextual ? Unsafe.Add(ref context, i) : 0) << ScaleBits) | (int)(x & (Scale - 1)));
            uint state = ((e >> 20) + 1) * (x >> ScaleBits) + ((e >> 8) & (Scale - 1));
            Unsafe.Add(ref output, i) = (byte)e;
            if (state < Lower)
            {
                if (read >= words.Length)
                {
                    throw new InvalidDataException("rANS stream is truncated.");
                }
                state = state << 16 | words[read++];
            }
            x = state;
        }
        return read;
    }

    /// <summary>One encoding step, branch-free: renormalize (emit the low 16 bits when the state is too large for the symbol), then code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Put(uint state, in EncodeSymbol e, ref ushort words, ref int top)
    {
        // need is 1 when state >= Max (both below 2^31, so the difference's sign says it).
        uint need = (uint)((int)(e.Max - 1 - state) >> 31) & 1;
        Unsafe.Add(ref words, top - 1) = (ushort)state;
        top -= (int)need;
        state >>= (int)(need << 4);
        uint q = (uint)(((ulong)state * e.Reciprocal) >> 32) >> (int)(e.ComplementShift >> 16);
        return state + e.Bias + q * (e.ComplementShift & 0xFFFF);
    }

    /// <summary>One decoding step, branch-free: the renormalizing read is taken or not by arithmetic on a mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(ref uint x, ref uint table, int context, ref byte output, ref ushort word, ref int read)
    {
        uint e = Unsafe.Add(ref table, (context << ScaleBits) | (int)(x & (Scale - 1)));
        uint state = ((e >> 20) + 1) * (x >> ScaleBits) + ((e >> 8) & (Scale - 1));
        output = (byte)e;
        // need is 1 when the state fell below the lower bound (state - Lower wraps to its top bit).
        uint need = (state - Lower) >> 31;
        int shift = (int)(need << 4);
        state = (state << shift) | (Unsafe.Add(ref word, read) & (0u - need));
        read += (int)need;
        x = state;
    }
}
