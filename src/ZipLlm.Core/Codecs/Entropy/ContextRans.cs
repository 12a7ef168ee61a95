using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ZipLlm.Codecs.Entropy;

/// <summary>
/// A static rANS coder (Duda's asymmetric numeral systems, in the interleaved form of Fabian Giesen's ryg_rans)
/// for byte symbols, where each symbol is coded with the frequency table of its <em>context</em>: a small number the
/// decoder can compute before it decodes the symbol, such as the exponent of the base element at the same place.
/// zstd cannot use such side information; grouping by context is what brings a delta to its conditional bound.
/// <para>
/// Encoded layout, all integers little-endian:
/// <code>
/// u8 contextCount
/// per context: u8 tag: 0 an unused context; 1 to 31 that many symbols, listed as bytes in ascending order;
///              32 a 32-byte bitmap of the symbols it holds follows
///              | each present symbol's frequency - 1 as a LEB128 varint, in symbol order (frequencies sum to 4096)
/// u32 state of each of the L lanes | u16 renormalization words, in the order the decoder reads them
/// </code>
/// Symbol i is coded in lane i % L, where L, the lane count, is not stored: the tensor format's version gives it (64 from
/// version 4, 32 before). Independent states let the CPU overlap their dependency chains (the decoder runs them as AVX2
/// vectors of eight, taking renormalization words lane by lane in order, as its scalar twin does): with 64 lanes an
/// order-0 stream, whose table sits in L1, decodes about 30% faster than with 32. States stay in [2^15, 2^31) and
/// renormalize 16 bits at a time, so encoding divides by reciprocal multiplication.
/// </para>
/// Holds its tables as scratch, so an instance is not thread-safe: give each worker its own.
/// </summary>
internal sealed class ContextRans
{
    /// <summary>Most contexts a stream may use.</summary>
    public const int MaxContexts = 64;

    /// <summary>Frequencies are scaled to sum to 2^ScaleBits.</summary>
    private const int ScaleBits = 12;
    private const int Scale = 1 << ScaleBits;
    private const uint Lower = 1u << 15;
    /// <summary>Lanes of the streams this coder writes (format version 4).</summary>
    public const int DefaultLanes = 64;

    /// <summary>Lanes of the streams of format version 3.</summary>
    public const int LegacyLanes = 32;

    // The decoder's 8-lane vectors are independent chains (but for the read position): their gathers' latencies overlap.
    private const int MaxLanes = 64;
    private const int VectorLanes = 8;
    private const int BitmapBytes = 32;
    // A context of fewer symbols lists them; one of more carries a bitmap (the tag that says so).
    private const int BitmapTag = 32;

    /// <summary>Every decoding path this processor can run, slowest first: the scalar twin always.</summary>
    internal static IReadOnlyList<RansPath> SupportedPaths { get; } = SupportedPathsOf();

    /// <summary>The fastest decoding path of this processor.</summary>
    internal static RansPath BestPath => SupportedPaths[^1];

    private int[] _counts = [];
    private EncodeSymbol[] _encode = [];
    // The vector encoder's table: per key, the reciprocal, then frequency (bits 12..0), bias (25..13) and shift (30..26).
    private uint[] _vectorEncode = [];
    private uint[] _decode = [];
    private ushort[] _words = [];
    private byte[] _wordContexts = [];

    /// <summary>Largest encoding of <paramref name="symbolCount"/> symbols in <paramref name="contextCount"/> contexts.</summary>
    public static int MaxEncodedLength(int symbolCount, int contextCount) =>
        // Tables, states, and at most one 16-bit word per symbol (a symbol costs at most 12 bits, but a lane may
        // renormalize before it has spent 16).
        1 + contextCount * (1 + BitmapBytes + 2 * 256) + 4 * MaxLanes + 2 * symbolCount + 2 * MaxLanes;

    /// <summary>
    /// The bytes <see cref="Encode(ReadOnlySpan{byte}, ReadOnlySpan{byte}, int, Span{byte}, int)"/> would write, computed from the symbol counts alone (no coding): the tables,
    /// plus each symbol's cost under its normalized frequency, rounded up. Within a few bytes of the real length.
    /// </summary>
    public long EstimateLength(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount, int lanes = DefaultLanes)
    {
        CheckArguments(symbols, contexts, contextCount);
        CheckLanes(lanes);
        Count(symbols, contexts, contextCount);
        double bits = 0;
        long tableBytes = 1 + 4 * lanes;
        Span<int> freqs = stackalloc int[256];
        for (int c = 0; c < contextCount; c++)
        {
            tableBytes++;
            ReadOnlySpan<int> counts = _counts.AsSpan(c * 256, 256);
            if (!Normalize(counts, freqs))
            {
                continue;
            }
            int present = 0;
            for (int s = 0; s < 256; s++)
            {
                if (counts[s] > 0)
                {
                    present++;
                    tableBytes += freqs[s] > 128 ? 2 : 1;
                    bits += counts[s] * (ScaleBits - Math.Log2(freqs[s]));
                }
            }
            tableBytes += present < BitmapTag ? present : BitmapBytes;
        }
        return tableBytes + (long)Math.Ceiling(bits / 16) * 2 + 2 * lanes;
    }

    /// <summary>
    /// Encodes <paramref name="symbols"/>, symbol i under the table of context <paramref name="contexts"/>[i] (all context 0
    /// when empty), in <c>lanes</c> lanes: <see cref="DefaultLanes"/>, or <see cref="LegacyLanes"/> for format version 3.
    /// </summary>
    /// <returns>Bytes written.</returns>
    /// <exception cref="ArgumentException">The contexts do not match the symbols, one is out of range, or the destination is too small.</exception>
    public int Encode(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount, Span<byte> destination, int lanes = DefaultLanes) =>
        Encode(symbols, contexts, contextCount, destination, counted: false, vectorized: true, lanes);

    /// <summary><see cref="Encode(ReadOnlySpan{byte}, ReadOnlySpan{byte}, int, Span{byte}, int)"/> with the vector path on or off (the scalar twin, for tests): the same bytes either way.</summary>
    internal int Encode(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount, Span<byte> destination, bool vectorized, int lanes = DefaultLanes) =>
        Encode(symbols, contexts, contextCount, destination, counted: false, vectorized, lanes);

    /// <summary>
    /// <see cref="Encode(ReadOnlySpan{byte}, ReadOnlySpan{byte}, int, Span{byte}, int)"/> of the very symbols and contexts the
    /// last <see cref="EstimateLength"/> was given: their counts are reused, not taken again.
    /// </summary>
    internal int EncodeEstimated(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount, Span<byte> destination, int lanes = DefaultLanes) =>
        Encode(symbols, contexts, contextCount, destination, counted: true, vectorized: true, lanes);

    private int Encode(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount, Span<byte> destination, bool counted, bool vectorized,
        int lanes)
    {
        CheckArguments(symbols, contexts, contextCount);
        CheckLanes(lanes);
        if (destination.Length < MaxEncodedLength(symbols.Length, contextCount))
        {
            throw new ArgumentException("Destination is smaller than MaxEncodedLength.", nameof(destination));
        }
        if (!counted || _counts.Length < contextCount * 256)
        {
            Count(symbols, contexts, contextCount);
        }
        Grow(ref _encode, contextCount * 256);
        bool vector = vectorized && Avx2.IsSupported && BitConverter.IsLittleEndian;
        if (vector)
        {
            Grow(ref _vectorEncode, 2 * contextCount * 256);
        }
        destination[0] = (byte)contextCount;
        int position = 1;
        Span<int> freqs = stackalloc int[256];
        for (int c = 0; c < contextCount; c++)
        {
            if (!Normalize(_counts.AsSpan(c * 256, 256), freqs))
            {
                destination[position++] = 0;
                continue;
            }
            int present = 256 - freqs.Count(0);
            if (present < BitmapTag)
            {
                destination[position++] = (byte)present;
                for (int s = 0; s < 256; s++)
                {
                    if (freqs[s] != 0)
                    {
                        destination[position++] = (byte)s;
                    }
                }
            }
            else
            {
                destination[position++] = BitmapTag;
                Span<byte> bitmap = destination.Slice(position, BitmapBytes);
                bitmap.Clear();
                for (int s = 0; s < 256; s++)
                {
                    if (freqs[s] != 0)
                    {
                        bitmap[s >> 3] |= (byte)(1 << (s & 7));
                    }
                }
                position += BitmapBytes;
            }
            int start = 0;
            for (int s = 0; s < 256; s++)
            {
                if (freqs[s] == 0)
                {
                    continue;
                }
                position += WriteVarint(destination[position..], (uint)freqs[s] - 1);
                var e = new EncodeSymbol(start, freqs[s]);
                _encode[c * 256 + s] = e;
                if (vector)
                {
                    _vectorEncode[2 * (c * 256 + s)] = e.Reciprocal;
                    _vectorEncode[2 * (c * 256 + s) + 1] = (uint)freqs[s] | e.Bias << 13 | (e.ComplementShift >> 16) << 26;
                }
                start += freqs[s];
            }
        }

        // Code backwards, so that the decoder reads forwards; words go to the end of the scratch and move down.
        Grow(ref _words, symbols.Length + 2 * lanes);
        Span<uint> states = (stackalloc uint[MaxLanes])[..lanes];
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
        for (int lane = 0; lane < lanes; lane++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(destination[position..], states[lane]);
            position += 4;
        }
        int wordCount = _words.Length - top;
        MemoryMarshal.AsBytes(_words.AsSpan(top, wordCount)).CopyTo(destination[position..]);
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("The rANS coder writes little-endian words.");
        }
        return position + 2 * wordCount;
    }

    /// <summary>
    /// Decodes <paramref name="destination"/>.Length symbols from <paramref name="encoded"/>, symbol i under the table of
    /// context <paramref name="contexts"/>[i] (all context 0 when empty), the same contexts and lanes the encoder was given.
    /// </summary>
    /// <exception cref="InvalidDataException">The encoding is corrupt or truncated, or was made with other contexts.</exception>
    public void Decode(ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> contexts, int contextCount, Span<byte> destination, int lanes = DefaultLanes) =>
        Decode(encoded, contexts, contextCount, destination, BestPath, lanes);

    /// <summary><see cref="Decode(ReadOnlySpan{byte}, ReadOnlySpan{byte}, int, Span{byte}, int)"/> by the given path (one of <see cref="SupportedPaths"/>; for tests).</summary>
    internal void Decode(ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> contexts, int contextCount, Span<byte> destination, RansPath path, int lanes = DefaultLanes)
    {
        CheckArguments(destination, contexts, contextCount);
        CheckLanes(lanes);
        Decode(encoded, contexts, default, default, contextCount, destination, path, lanes);
    }

    /// <summary>
    /// <see cref="Decode(ReadOnlySpan{byte}, ReadOnlySpan{byte}, int, Span{byte}, int)"/> where symbol i's context is
    /// <paramref name="rule"/> applied to <paramref name="baseWords"/>[i], computed as the symbols are decoded: the contexts
    /// the encoder was given, without a pass to compute them and a buffer to hold them.
    /// </summary>
    /// <exception cref="InvalidDataException">The encoding is corrupt or truncated, or was made with other contexts.</exception>
    public void Decode(ReadOnlySpan<byte> encoded, ReadOnlySpan<ushort> baseWords, WordContexts rule, int contextCount, Span<byte> destination,
        int lanes = DefaultLanes) =>
        Decode(encoded, baseWords, rule, contextCount, destination, BestPath, lanes);

    /// <summary><see cref="Decode(ReadOnlySpan{byte}, ReadOnlySpan{ushort}, WordContexts, int, Span{byte}, int)"/> by the given path (for tests).</summary>
    internal void Decode(ReadOnlySpan<byte> encoded, ReadOnlySpan<ushort> baseWords, WordContexts rule, int contextCount, Span<byte> destination, RansPath path,
        int lanes = DefaultLanes)
    {
        CheckArguments(destination, default, contextCount);
        CheckLanes(lanes);
        if (baseWords.Length != destination.Length)
        {
            throw new ArgumentException("There must be one base word for each symbol.", nameof(baseWords));
        }
        Decode(encoded, default, baseWords, rule, contextCount, destination, path, lanes);
    }

    private void Decode(ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> contexts, ReadOnlySpan<ushort> baseWords, WordContexts rule, int contextCount,
        Span<byte> destination, RansPath path, int lanes)
    {
        if (encoded.IsEmpty || encoded[0] != contextCount)
        {
            throw new InvalidDataException($"rANS stream holds {(encoded.IsEmpty ? 0 : encoded[0])} contexts where {contextCount} are expected.");
        }
        Grow(ref _decode, contextCount * Scale);
        int position = 1;
        Span<bool> holds = stackalloc bool[256];
        for (int c = 0; c < contextCount; c++)
        {
            if (position >= encoded.Length)
            {
                throw new InvalidDataException("rANS stream is truncated in its tables.");
            }
            int tag = encoded[position++];
            Span<uint> table = _decode.AsSpan(c * Scale, Scale);
            if (tag == 0)
            {
                // An unused context: no symbol names it when the encoding is sound. Its table decodes symbol 0
                // whatever the state, so a corrupt one cannot read stale memory, only fail its checksum.
                for (int slot = 0; slot < Scale; slot++)
                {
                    table[slot] = (Scale - 1u) << 20 | (uint)slot << 8;
                }
                continue;
            }
            holds.Clear();
            if (tag < BitmapTag)
            {
                if (encoded.Length - position < tag)
                {
                    throw new InvalidDataException("rANS stream is truncated in its tables.");
                }
                for (int k = 0; k < tag; k++)
                {
                    byte symbol = encoded[position + k];
                    if (k > 0 && symbol <= encoded[position + k - 1])
                    {
                        throw new InvalidDataException("rANS table lists its symbols out of order.");
                    }
                    holds[symbol] = true;
                }
                position += tag;
            }
            else if (tag == BitmapTag)
            {
                if (encoded.Length - position < BitmapBytes)
                {
                    throw new InvalidDataException("rANS stream is truncated in its tables.");
                }
                for (int symbol = 0; symbol < 256; symbol++)
                {
                    holds[symbol] = (encoded[position + (symbol >> 3)] & (1 << (symbol & 7))) != 0;
                }
                position += BitmapBytes;
            }
            else
            {
                throw new InvalidDataException($"rANS table has unknown tag {tag}.");
            }
            int start = 0;
            for (int s = 0; s < 256; s++)
            {
                if (!holds[s])
                {
                    continue;
                }
                uint freq = ReadVarint(encoded, ref position) + 1;
                if (freq > (uint)(Scale - start))
                {
                    throw new InvalidDataException("rANS table frequencies exceed the scale.");
                }
                // Each slot: frequency - 1 (bits 31..20), slot - start (19..8), symbol (7..0).
                for (int slot = 0; slot < (int)freq; slot++)
                {
                    table[start + slot] = (freq - 1) << 20 | (uint)slot << 8 | (uint)s;
                }
                start += (int)freq;
            }
            if (start != Scale)
            {
                throw new InvalidDataException("rANS table frequencies do not sum to the scale.");
            }
        }
        if (encoded.Length - position < 4 * lanes || (encoded.Length - position) % 2 != 0)
        {
            throw new InvalidDataException("rANS stream is truncated in its states.");
        }
        Span<uint> states = (stackalloc uint[MaxLanes])[..lanes];
        for (int lane = 0; lane < lanes; lane++)
        {
            states[lane] = BinaryPrimitives.ReadUInt32LittleEndian(encoded[position..]);
            position += 4;
            if (states[lane] is < Lower or >= 1u << 31)
            {
                throw new InvalidDataException("rANS state out of range.");
            }
        }
        ReadOnlySpan<ushort> words = MemoryMarshal.Cast<byte, ushort>(encoded[position..]);
        int read = DecodeSymbols(words, contexts, baseWords, rule, contextCount, states, destination, path);
        if (read != words.Length)
        {
            throw new InvalidDataException($"rANS stream has {words.Length - read} words left over.");
        }
        foreach (uint state in states)
        {
            if (state != Lower)
            {
                throw new InvalidDataException("rANS stream does not end in its initial state: it is corrupt.");
            }
        }
    }

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

    /// <summary>
    /// Counts each (context, symbol) into the first contextCount * 256 counts. Four tables, taken in turn, so that a run of
    /// one symbol (most of a skewed stream) does not wait on the store of the same counter: about three times faster.
    /// </summary>
    private void Count(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount)
    {
        int size = contextCount * 256;
        Grow(ref _counts, 4 * size);
        Span<int> all = _counts.AsSpan(0, 4 * size);
        all.Clear();
        ref int t0 = ref MemoryMarshal.GetArrayDataReference(_counts);
        ref int t1 = ref Unsafe.Add(ref t0, size);
        ref int t2 = ref Unsafe.Add(ref t0, 2 * size);
        ref int t3 = ref Unsafe.Add(ref t0, 3 * size);
        ref byte symbol = ref MemoryMarshal.GetReference(symbols);
        int n = symbols.Length, i = 0;
        if (contexts.IsEmpty)
        {
            for (; i + 4 <= n; i += 4)
            {
                uint four = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref symbol, i));
                Unsafe.Add(ref t0, (int)(four & 0xFF))++;
                Unsafe.Add(ref t1, (int)((four >> 8) & 0xFF))++;
                Unsafe.Add(ref t2, (int)((four >> 16) & 0xFF))++;
                Unsafe.Add(ref t3, (int)(four >> 24))++;
            }
            for (; i < n; i++)
            {
                Unsafe.Add(ref t0, Unsafe.Add(ref symbol, i))++;
            }
        }
        else
        {
            ref byte context = ref MemoryMarshal.GetReference(contexts);
            for (; i + 4 <= n; i += 4)
            {
                uint four = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref symbol, i));
                uint where = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref context, i));
                Unsafe.Add(ref t0, (int)((where & 0xFF) << 8 | (four & 0xFF)))++;
                Unsafe.Add(ref t1, (int)((where & 0xFF00) | ((four >> 8) & 0xFF)))++;
                Unsafe.Add(ref t2, (int)(((where >> 8) & 0xFF00) | ((four >> 16) & 0xFF)))++;
                Unsafe.Add(ref t3, (int)(((where >> 16) & 0xFF00) | (four >> 24)))++;
            }
            for (; i < n; i++)
            {
                Unsafe.Add(ref t0, Unsafe.Add(ref context, i) << 8 | Unsafe.Add(ref symbol, i))++;
            }
        }
        Span<int> counts = all[..size];
        for (int table = 1; table < 4; table++)
        {
            ReadOnlySpan<int> other = all.Slice(table * size, size);
            for (int k = 0; k < size; k++)
            {
                counts[k] += other[k];
            }
        }
    }

    /// <summary>Scales <paramref name="counts"/> to frequencies summing to 2^12, every present symbol at least 1.</summary>
    /// <returns>False when the context holds no symbol.</returns>
    private static bool Normalize(ReadOnlySpan<int> counts, Span<int> freqs)
    {
        long total = 0;
        foreach (int c in counts)
        {
            total += c;
        }
        freqs.Clear();
        if (total == 0)
        {
            return false;
        }
        int sum = 0, largest = 0;
        for (int s = 0; s < 256; s++)
        {
            if (counts[s] == 0)
            {
                continue;
            }
            freqs[s] = Math.Max(1, (int)Math.Round((double)counts[s] * Scale / total));
            sum += freqs[s];
            if (freqs[s] > freqs[largest])
            {
                largest = s;
            }
        }
        if (sum <= Scale)
        {
            freqs[largest] += Scale - sum;
            return true;
        }
        // Rounding up the rare symbols overshot: take the excess from the symbols that lose least by it.
        int excess = sum - Scale;
        while (excess > 0)
        {
            int best = -1;
            double bestLoss = double.MaxValue;
            for (int s = 0; s < 256; s++)
            {
                if (freqs[s] > 1)
                {
                    double loss = counts[s] * Math.Log2((double)freqs[s] / (freqs[s] - 1));
                    if (loss < bestLoss)
                    {
                        bestLoss = loss;
                        best = s;
                    }
                }
            }
            int take = Math.Min(excess, Math.Max(1, (freqs[best] - 1) / 8));
            freqs[best] -= take;
            excess -= take;
        }
        return true;
    }

    private static RansPath[] SupportedPathsOf()
    {
        var paths = new List<RansPath> { RansPath.Scalar };
        if (Avx2.IsSupported && BitConverter.IsLittleEndian)
        {
            paths.Add(RansPath.Avx2);
            if (Avx512F.VL.IsSupported)
            {
                paths.Add(RansPath.Avx512);
            }
        }
        return [.. paths];
    }

    private static void CheckLanes(int lanes)
    {
        if (lanes is not (DefaultLanes or LegacyLanes))
        {
            throw new ArgumentOutOfRangeException(nameof(lanes), lanes, $"A rANS stream has {LegacyLanes} or {DefaultLanes} lanes.");
        }
    }

    private static void CheckArguments(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount)
    {
        if (contextCount is < 1 or > MaxContexts)
        {
            throw new ArgumentOutOfRangeException(nameof(contextCount), contextCount, $"A rANS stream has 1 to {MaxContexts} contexts.");
        }
        if (!contexts.IsEmpty && contexts.Length != symbols.Length)
        {
            throw new ArgumentException("There must be one context for each symbol.", nameof(contexts));
        }
        if (!contexts.IsEmpty && contextCount < 256 && contexts.IndexOfAnyInRange((byte)contextCount, (byte)255) >= 0)
        {
            throw new ArgumentException($"A context is out of range 0..{contextCount - 1}.", nameof(contexts));
        }
    }

    private static int WriteVarint(Span<byte> destination, uint value)
    {
        int n = 0;
        while (value >= 0x80)
        {
            destination[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[n++] = (byte)value;
        return n;
    }

    private static uint ReadVarint(ReadOnlySpan<byte> source, ref int position)
    {
        uint value = 0;
        for (int shift = 0; shift < 14; shift += 7)
        {
            if (position >= source.Length)
            {
                throw new InvalidDataException("rANS stream is truncated in its tables.");
            }
            byte b = source[position++];
            value |= (uint)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }
        throw new InvalidDataException("rANS table frequency is too long.");
    }

    private static void Grow<T>(ref T[] array, int length)
    {
        if (array.Length < length)
        {
            array = new T[length];
        }
    }

    /// <summary>A symbol's encoding constants (ryg_rans's RansEncSymbol): division by its frequency as a multiply and shift.</summary>
    private readonly struct EncodeSymbol
    {
        public readonly uint Max;
        public readonly uint Reciprocal;
        public readonly uint Bias;
        /// <summary>Scale - frequency in bits 15..0, the reciprocal's shift in bits 20..16: 16 bytes a symbol.</summary>
        public readonly uint ComplementShift;

        public EncodeSymbol(int start, int freq)
        {
            // The state before coding must stay below Max, so that coding keeps it below 2^31.
            Max = (uint)freq << (31 - ScaleBits);
            uint complement = (uint)(Scale - freq);
            if (freq < 2)
            {
                Reciprocal = uint.MaxValue;
                ComplementShift = complement;
                Bias = (uint)(start + Scale - 1);
            }
            else
            {
                int shift = 32 - BitOperations.LeadingZeroCount((uint)freq - 1);
                Reciprocal = (uint)(((1ul << (shift + 31)) + (uint)freq - 1) / (uint)freq);
                ComplementShift = complement | (uint)(shift - 1) << 16;
                Bias = (uint)start;
            }
        }
    }
}

/// <summary>
/// A context computed from a 16-bit base word: a bit field of it, less an offset, clamped to the contexts there are
/// (<c>clamp(((word &gt;&gt; Shift) &amp; Mask) - Offset, 0, contextCount - 1)</c>), such as a float's exponent bucket.
/// </summary>
/// <param name="Shift">Where the field starts.</param>
/// <param name="Mask">The field's bits, after the shift.</param>
/// <param name="Offset">Subtracted from the field.</param>
public readonly record struct WordContexts(int Shift, int Mask, int Offset)
{
    /// <summary>The context of <paramref name="word"/> among <paramref name="contextCount"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte Of(ushort word, int contextCount) => (byte)Math.Clamp(((word >> Shift) & Mask) - Offset, 0, contextCount - 1);
}

/// <summary>How <see cref="ContextRans"/> decodes: by its scalar twin, or eight lanes a vector with AVX2, or with AVX-512's 256-bit forms.</summary>
internal enum RansPath
{
    /// <summary>One lane at a time.</summary>
    Scalar,
    /// <summary>AVX2 vectors of eight lanes.</summary>
    Avx2,
    /// <summary>The same vectors with AVX-512VL instructions.</summary>
    Avx512,
}
