using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ZipLlm.Codecs.Entropy;

// The vector decoders: whole rounds, eight lanes a vector, by a step per instruction set (AVX2, AVX-512VL).
internal sealed partial class ContextRans
{
    /// <summary>
    /// Whole rounds of one symbol a lane, the lanes in AVX2 vectors of eight: a gather of their table entries each, and the
    /// renormalizing reads spread to the lanes that need one, in lane order, as the scalar rounds read them. The
    /// vectors depend on each other only through the read position, so their gathers overlap.
    /// </summary>
    /// <returns>Symbols decoded and words read; the states are updated.</returns>
    private unsafe (int Symbols, int Read) DecodeRounds<TRound>(ReadOnlySpan<ushort> words, ReadOnlySpan<byte> contexts, ReadOnlySpan<ushort> baseWords,
        WordContexts rule, int contextCount, Span<uint> states, Span<byte> destination)
        where TRound : struct, IRound
    {
        int n = destination.Length, i = 0, read = 0, lanes = states.Length;
        bool contextual = !contexts.IsEmpty, wide = lanes == MaxLanes;
        fixed (uint* table = _decode)
        fixed (ushort* word = words)
        fixed (byte* context = contexts)
        fixed (ushort* baseWord = baseWords)
        fixed (byte* output = destination)
        fixed (uint* state = states)
        fixed (int* spread = s_spread)
        {
            Vector256<uint> x0 = Avx.LoadVector256(state), x1 = Avx.LoadVector256(state + 8), x2 = Avx.LoadVector256(state + 16), x3 = Avx.LoadVector256(state + 24);
            Vector256<uint> x4 = wide ? Avx.LoadVector256(state + 32) : default, x5 = wide ? Avx.LoadVector256(state + 40) : default;
            Vector256<uint> x6 = wide ? Avx.LoadVector256(state + 48) : default, x7 = wide ? Avx.LoadVector256(state + 56) : default;
            if (baseWords.Length == n && n > 0)
            {
                // The contexts from the base words, eight at a time, beside the gathers.
                var shift = Vector128.CreateScalar(rule.Shift);
                Vector256<int> mask = Vector256.Create(rule.Mask), offset = Vector256.Create(rule.Offset), last = Vector256.Create(contextCount - 1);
                for (; i + lanes <= n && words.Length - read >= lanes; i += lanes)
                {
                    ushort* b = baseWord + i;
                    byte* o = output + i;
                    x0 = TRound.Step(x0, table, Contexts(b, shift, mask, offset, last), o, word, ref read, spread);
                    x1 = TRound.Step(x1, table, Contexts(b + 8, shift, mask, offset, last), o + 8, word, ref read, spread);
                    x2 = TRound.Step(x2, table, Contexts(b + 16, shift, mask, offset, last), o + 16, word, ref read, spread);
                    x3 = TRound.Step(x3, table, Contexts(b + 24, shift, mask, offset, last), o + 24, word, ref read, spread);
                    if (wide)
                    {
                        x4 = TRound.Step(x4, table, Contexts(b + 32, shift, mask, offset, last), o + 32, word, ref read, spread);
                        x5 = TRound.Step(x5, table, Contexts(b + 40, shift, mask, offset, last), o + 40, word, ref read, spread);
                        x6 = TRound.Step(x6, table, Contexts(b + 48, shift, mask, offset, last), o + 48, word, ref read, spread);
                        x7 = TRound.Step(x7, table, Contexts(b + 56, shift, mask, offset, last), o + 56, word, ref read, spread);
                    }
                }
            }
            for (; i + lanes <= n && words.Length - read >= lanes; i += lanes)
            {
                byte* c = contextual ? context + i : null;
                byte* o = output + i;
                x0 = TRound.Step(x0, table, Load(c), o, word, ref read, spread);
                x1 = TRound.Step(x1, table, Load(c, 8), o + 8, word, ref read, spread);
                x2 = TRound.Step(x2, table, Load(c, 16), o + 16, word, ref read, spread);
                x3 = TRound.Step(x3, table, Load(c, 24), o + 24, word, ref read, spread);
                if (wide)
                {
                    x4 = TRound.Step(x4, table, Load(c, 32), o + 32, word, ref read, spread);
                    x5 = TRound.Step(x5, table, Load(c, 40), o + 40, word, ref read, spread);
                    x6 = TRound.Step(x6, table, Load(c, 48), o + 48, word, ref read, spread);
                    x7 = TRound.Step(x7, table, Load(c, 56), o + 56, word, ref read, spread);
                }
            }
            Avx.Store(state, x0);
            Avx.Store(state + 8, x1);
            Avx.Store(state + 16, x2);
            Avx.Store(state + 24, x3);
            if (wide)
            {
                Avx.Store(state + 32, x4);
                Avx.Store(state + 40, x5);
                Avx.Store(state + 48, x6);
                Avx.Store(state + 56, x7);
            }
        }
        return (i, read);
    }

    /// <summary>The contexts of eight symbols from <paramref name="context"/> + <paramref name="at"/>; all 0 when there are none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<int> Load(byte* context, int at = 0) =>
        context == null ? Vector256<int>.Zero : Avx2.ConvertToVector256Int32(context + at);

    /// <summary><see cref="WordContexts.Of"/> of eight base words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<int> Contexts(ushort* baseWords, Vector128<int> shift, Vector256<int> mask, Vector256<int> offset, Vector256<int> last)
    {
        Vector256<int> field = (Avx2.ShiftRightLogical(Avx2.ConvertToVector256Int32(baseWords), shift) & mask) - offset;
        return Avx2.Min(Avx2.Max(field, Vector256<int>.Zero), last);
    }

    /// <summary>
    /// Eight lanes' decoding step: gather their entries, decode, store their symbols, then spread the next words to the
    /// lanes that need one. A struct per instruction set, so that each <see cref="DecodeRounds{TRound}"/> is compiled
    /// with its step inlined.
    /// </summary>
    internal interface IRound
    {
        static abstract unsafe Vector256<uint> Step(Vector256<uint> x, uint* table, Vector256<int> contexts, byte* output, ushort* word, ref int read, int* spread);
    }

    /// <summary>The step in AVX2.</summary>
    private readonly struct Avx2Round : IRound
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static unsafe Vector256<uint> Step(Vector256<uint> x, uint* table, Vector256<int> contexts, byte* output, ushort* word, ref int read, int* spread)
        {
            Vector256<uint> slotMask = Vector256.Create((uint)(Scale - 1));
            Vector256<int> index = (x & slotMask).AsInt32() | Avx2.ShiftLeftLogical(contexts, ScaleBits);
            Vector256<uint> e = Avx2.GatherVector256(table, index, 4);
            x = Avx2.MultiplyLow((e >> 20) + Vector256<uint>.One, x >> ScaleBits) + ((e >> 8) & slotMask);
            Vector256<uint> symbols = e & Vector256.Create(0xFFu);
            Vector256<byte> packed = Vector256.Narrow(Vector256.Narrow(symbols, symbols), Vector256<ushort>.Zero);
            *(ulong*)output = packed.AsUInt64().ToScalar();
            Vector256<int> need = Avx2.CompareGreaterThan(Vector256.Create((int)Lower), x.AsInt32());
            int mask = Avx.MoveMask(need.AsSingle());
            Vector256<uint> next = Avx2.PermuteVar8x32(Avx2.ConvertToVector256Int32(word + read), Avx.LoadVector256(spread + mask * VectorLanes)).AsUInt32();
            read += BitOperations.PopCount((uint)mask);
            return Avx2.BlendVariable(x, (x << 16) | next, need.AsUInt32());
        }
    }

    /// <summary>
    /// The step with AVX-512's 256-bit forms: the symbols narrowed in one instruction, and the next words expanded
    /// straight into the lanes that need them (no table of spreads). Fewer instructions a symbol; the same symbols and reads.
    /// </summary>
    private readonly struct Avx512Round : IRound
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static unsafe Vector256<uint> Step(Vector256<uint> x, uint* table, Vector256<int> contexts, byte* output, ushort* word, ref int read, int* spread)
        {
            Vector256<uint> slotMask = Vector256.Create((uint)(Scale - 1));
            // (x & slotMask) | contexts << ScaleBits: truth table (A & B) | C.
            Vector256<uint> index = Avx512F.VL.TernaryLogic(x, slotMask, Avx2.ShiftLeftLogical(contexts, ScaleBits).AsUInt32(), 0xEA);
            Vector256<uint> e = Avx2.GatherVector256(table, index.AsInt32(), 4);
            x = Avx2.MultiplyLow((e >> 20) + Vector256<uint>.One, x >> ScaleBits) + ((e >> 8) & slotMask);
            *(ulong*)output = Avx512F.VL.ConvertToVector128Byte(e).AsUInt64().ToScalar();
            Vector256<uint> need = Avx512F.VL.CompareLessThan(x, Vector256.Create(Lower));
            Vector256<uint> next = Avx512F.VL.Expand(Vector256<uint>.Zero, need, Avx2.ConvertToVector256Int32(word + read).AsUInt32());
            read += BitOperations.PopCount(need.ExtractMostSignificantBits());
            return Avx2.BlendVariable(x, (x << 16) | next, need);
        }
    }

    /// <summary>For each mask of lanes that need a word, which of the next eight words each lane takes.</summary>
    private static readonly int[] s_spread = Spread();

    private static int[] Spread()
    {
        var spread = new int[256 * VectorLanes];
        for (int mask = 0; mask < 256; mask++)
        {
            int taken = 0;
            for (int lane = 0; lane < VectorLanes; lane++)
            {
                if ((mask & (1 << lane)) != 0)
                {
                    spread[mask * VectorLanes + lane] = taken++;
                }
            }
        }
        return spread;
    }
}
