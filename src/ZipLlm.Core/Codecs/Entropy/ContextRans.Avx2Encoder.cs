using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ZipLlm.Codecs.Entropy;

// The AVX2 encoder: whole rounds, eight lanes a vector, writing the very words the scalar loop writes.
internal sealed partial class ContextRans
{
    /// <summary>
    /// Whole rounds of one symbol a lane (<paramref name="states"/> holds the lanes), last round first, as the scalar loop
    /// codes them: the lanes in AVX2 vectors of eight, the last eight first. Each vector gathers its symbols' constants,
    /// and the lanes whose state must renormalize write their low 16 bits, packed in lane order, just below the words
    /// already written: where the scalar loop, going from the last lane down, puts them.
    /// </summary>
    /// <returns>The start of the next round to code: minus the lane count once all are done.</returns>
    private unsafe int EncodeRoundsAvx2(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int whole, Span<uint> states, ref int top)
    {
        int lanes = states.Length;
        int g = whole - lanes;
        bool contextual = !contexts.IsEmpty;
        fixed (uint* table = _vectorEncode)
        fixed (ushort* words = _words)
        fixed (byte* symbol = symbols)
        fixed (byte* context = contexts)
        fixed (uint* state = states)
        fixed (int* pack = s_pack)
        {
            Vector256<uint> x0 = Avx.LoadVector256(state), x1 = Avx.LoadVector256(state + 8), x2 = Avx.LoadVector256(state + 16), x3 = Avx.LoadVector256(state + 24);
            bool wide = lanes == MaxLanes;
            Vector256<uint> x4 = wide ? Avx.LoadVector256(state + 32) : default, x5 = wide ? Avx.LoadVector256(state + 40) : default;
            Vector256<uint> x6 = wide ? Avx.LoadVector256(state + 48) : default, x7 = wide ? Avx.LoadVector256(state + 56) : default;
            int at = top;
            for (; g >= 0; g -= lanes)
            {
                byte* c = contextual ? context + g : null;
                if (wide)
                {
                    x7 = Put(x7, table, symbol + g + 56, c == null ? null : c + 56, words, ref at, pack);
                    x6 = Put(x6, table, symbol + g + 48, c == null ? null : c + 48, words, ref at, pack);
                    x5 = Put(x5, table, symbol + g + 40, c == null ? null : c + 40, words, ref at, pack);
                    x4 = Put(x4, table, symbol + g + 32, c == null ? null : c + 32, words, ref at, pack);
                }
                x3 = Put(x3, table, symbol + g + 24, c == null ? null : c + 24, words, ref at, pack);
                x2 = Put(x2, table, symbol + g + 16, c == null ? null : c + 16, words, ref at, pack);
                x1 = Put(x1, table, symbol + g + 8, c == null ? null : c + 8, words, ref at, pack);
                x0 = Put(x0, table, symbol + g, c, words, ref at, pack);
            }
            top = at;
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
        return g;
    }

    /// <summary>
    /// Eight lanes' encoding step, <see cref="Put(uint, in EncodeSymbol, ref ushort, ref int)"/> in vector form: the words
    /// of the lanes that renormalize are stored as the top of an eight-word store that ends at <paramref name="top"/> (the
    /// words scratch keeps at least eight free below it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<uint> Put(Vector256<uint> x, uint* table, byte* symbol, byte* context, ushort* words, ref int top, int* pack)
    {
        Vector256<int> key = Avx2.ConvertToVector256Int32(symbol);
        if (context != null)
        {
            key |= Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(context), 8);
        }
        key = Avx2.ShiftLeftLogical(key, 1);
        Vector256<uint> reciprocal = Avx2.GatherVector256(table, key, 4);
        Vector256<uint> packed = Avx2.GatherVector256(table + 1, key, 4);
        Vector256<uint> freq = packed & Vector256.Create(0x1FFFu);
        // Renormalize where the state is at least freq << (31 - ScaleBits) (both below 2^31: a signed compare does).
        Vector256<uint> need = Avx2.CompareGreaterThan(x.AsInt32(), ((freq << (31 - ScaleBits)) - Vector256<uint>.One).AsInt32()).AsUInt32();
        int mask = Avx.MoveMask(need.AsSingle());
        Vector256<uint> moved = Avx2.PermuteVar8x32(x, Avx.LoadVector256((uint*)pack + mask * VectorLanes)) & Vector256.Create(0xFFFFu);
        Vector128<ushort> low = Sse41.PackUnsignedSaturate(moved.GetLower().AsInt32(), moved.GetUpper().AsInt32());
        Sse2.Store(words + top - VectorLanes, low);
        top -= BitOperations.PopCount((uint)mask);
        x = Avx2.ShiftRightLogicalVariable(x, need & Vector256.Create(16u));
        // q = high 32 bits of x * reciprocal, shifted: the even lanes' products, then the odd lanes'.
        Vector256<ulong> even = Avx2.Multiply(x, reciprocal);
        Vector256<ulong> odd = Avx2.Multiply(Avx2.ShiftRightLogical(x.AsUInt64(), 32).AsUInt32(), Avx2.ShiftRightLogical(reciprocal.AsUInt64(), 32).AsUInt32());
        Vector256<uint> q = Avx2.Blend(Avx2.ShiftRightLogical(even, 32).AsUInt32(), odd.AsUInt32(), 0b10101010);
        q = Avx2.ShiftRightLogicalVariable(q, packed >> 26);
        Vector256<uint> bias = (packed >> 13) & Vector256.Create(0x1FFFu);
        return x + bias + Avx2.MultiplyLow(q, Vector256.Create((uint)Scale) - freq);
    }

    /// <summary>For each mask of lanes that renormalize, the lane whose word goes to each of eight places: the lanes in order, at the top.</summary>
    private static readonly int[] s_pack = Pack();

    private static int[] Pack()
    {
        var pack = new int[256 * VectorLanes];
        for (int mask = 0; mask < 256; mask++)
        {
            int place = VectorLanes - BitOperations.PopCount((uint)mask);
            for (int lane = 0; lane < VectorLanes; lane++)
            {
                if ((mask & (1 << lane)) != 0)
                {
                    pack[mask * VectorLanes + place++] = lane;
                }
            }
        }
        return pack;
    }
}
