using System.Buffers.Binary;
using System.Runtime.InteropServices;
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
/// <para>
/// This file holds the entry points and the stream's frame (states, words); the ideas each have a file:
/// <c>ContextRans.Tables.cs</c> the table format, <c>ContextRans.Counts.cs</c> counting and normalization (and the
/// length estimate), <c>ContextRans.Scalar.cs</c> the one-lane steps and loops, <c>ContextRans.Avx2Encoder.cs</c> the
/// vector encoder, <c>ContextRans.VectorDecoder.cs</c> the vector decoders.
/// </para>
/// Holds its tables as scratch, so an instance is not thread-safe: give each worker its own.
/// </summary>
internal sealed partial class ContextRans
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
        bool vector = vectorized && Avx2.IsSupported && BitConverter.IsLittleEndian;
        int position = WriteTables(contextCount, vector, destination);
        Span<uint> states = (stackalloc uint[MaxLanes])[..lanes];
        int top = EncodeSymbols(symbols, contexts, states, vector);
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
        int position = ReadTables(encoded, contextCount);
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

    private static void Grow<T>(ref T[] array, int length)
    {
        if (array.Length < length)
        {
            array = new T[length];
        }
    }
}
