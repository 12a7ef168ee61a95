using System.Buffers.Binary;
using System.IO.Hashing;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Entropy;
using ZipLlm.Codecs.Zstd;

namespace ZipLlm.Tests.Codecs;

/// <summary>
/// The stored format pinned byte for byte: fixed chunks and tensors (made by integer arithmetic alone, so they are the
/// same on every machine) are encoded by every transform and stream mode, and the encodings' hashes must be the ones
/// the code wrote when they were recorded (format version 4, before the codec was split into its chooser and stream
/// coder; the context XOR's cases and the version 5 tensor when format 5 added that transform, the cases it would now win
/// pinned with it turned off, so that version 4's bytes stay proved unchanged). The round-trip tests prove a change still decodes; these prove a refactoring writes the same bytes. zstd runs
/// on the managed port, whose version the package pins (the system's libzstd may write other, equally valid, frames).
/// A deliberate change of the coding changes these hashes: record the new ones with the format change that makes it.
/// </summary>
public class PinnedEncodingTests
{
    private static readonly CodecOptions s_options = new() { Backend = ZstdBackend.Managed };

    /// <summary>Each case's transform, encoded length and XxHash3 of the encoded bytes, as recorded.</summary>
    private static readonly Dictionary<string, string> s_pinned = new()
    {
        ["solo-bf16"] = "Solo 734262 64cf77c70585e4c1",
        ["solo-f32"] = "Solo 891542 b5b81aaee97bd038",
        ["xor-bytes"] = "Xor 105513 c3a62f5660accd08",
        ["xor-f32"] = "Xor 199021 e9eaf6cc4fceedd9",
        ["difference-bf16"] = "OrderedDifference 123407 8c8c827648b3b380",
        ["difference-f16"] = "OrderedDifference 61973 b7e0a652cfc6cf37",
        ["difference-bf16-odd-length"] = "OrderedDifference 12146 8985c0fef8534fc9",
        ["far-bf16-estimated"] = "Solo 734398 47cecede89a06b00",
        ["far-bf16-every-coding"] = "Solo 734398 47cecede89a06b00",
        ["far-bf16-small-chunk"] = "Solo 46142 eb5042acf8b55e7a",
        ["sparse-bf16-xor"] = "Xor 21157 9da9217dcd9587ea",
        ["difference-bf16-no-rans"] = "OrderedDifference 61857 29f8d3a7cec0d286",
        ["difference-bf16-version-3"] = "OrderedDifference 61784 945d30c1897c44dc",
        ["tensor-bf16-delta"] = "Tensor 155894 756ecd4d1d84e60f",
        ["tensor-bf16-delta-version-4"] = "Tensor 155894 f55201bd65773005",
        ["context-xor-f32"] = "ContextXor 182219 df6cb3e33506e373",
        ["context-xor-bf16-sparse"] = "ContextXor 17615 669a785d8c66c2e2",
        ["context-xor-bf16-retrained"] = "ContextXor 565075 c1c9d3793ec20c52",
        ["rans-16-contexts"] = "Rans 80743 92701115538079c7",
        ["rans-16-contexts-32-lanes"] = "Rans 80691 7271c68d074832fe",
        ["rans-order-0-scalar"] = "Rans 80233 8ad9a2ecac76ef96",
    };

    public static TheoryData<string> Cases() => [.. s_pinned.Keys];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encode_FixedInput_WritesThePinnedBytes(string name)
    {
        Assert.Equal(s_pinned[name], Encode(name));
    }

    private static string Encode(string name) => name switch
    {
        "solo-bf16" => Chunk(ElementLayout.Word16, Words16(1, 1 << 19, Bf16), null),
        "solo-f32" => Chunk(ElementLayout.Word32, Words32(2, 1 << 18), null),
        "xor-bytes" => Chunk(ElementLayout.Bytes, Bytes(3, 300_000), Near(4, Bytes(3, 300_000), 1)),
        "xor-f32" => Chunk(ElementLayout.Word32, Words32(5, 1 << 18), Near(6, Words32(5, 1 << 18), 4), s_options with { ContextXor = false }),
        "context-xor-f32" => Chunk(ElementLayout.Word32, Words32(5, 1 << 18), Near(6, Words32(5, 1 << 18), 4)),
        "difference-bf16" => Chunk(ElementLayout.Word16, Words16(7, 1 << 19, Bf16), Nudged(8, Words16(7, 1 << 19, Bf16))),
        "difference-f16" => Chunk(ElementLayout.Half, Words16(9, 1 << 18, F16), Nudged(10, Words16(9, 1 << 18, F16))),
        "difference-bf16-odd-length" => Chunk(ElementLayout.Word16, Bytes16(11, 100_001), Nudged(12, Bytes16(11, 100_001))),
        "far-bf16-estimated" => Chunk(ElementLayout.Word16, Words16(13, 1 << 19, Bf16), Words16(14, 1 << 19, Bf16)),
        "far-bf16-every-coding" => Chunk(ElementLayout.Word16, Words16(13, 1 << 19, Bf16), Words16(14, 1 << 19, Bf16),
            s_options with { TrialEveryCoding = true }),
        "far-bf16-small-chunk" => Chunk(ElementLayout.Word16, Words16(15, 1 << 15, Bf16), Words16(16, 1 << 15, Bf16)),
        "sparse-bf16-xor" => Chunk(ElementLayout.Word16, Words16(17, 1 << 19, Bf16), Near(18, Words16(17, 1 << 19, Bf16), 64),
            s_options with { OrderedDifference = false, ContextXor = false }),
        "context-xor-bf16-sparse" => Chunk(ElementLayout.Word16, Words16(17, 1 << 19, Bf16), Near(18, Words16(17, 1 << 19, Bf16), 64),
            s_options with { OrderedDifference = false }),
        "context-xor-bf16-retrained" => Chunk(ElementLayout.Word16, Words16(28, 1 << 19, Bf16), Retrained(29, Words16(28, 1 << 19, Bf16))),
        "difference-bf16-no-rans" => Chunk(ElementLayout.Word16, Words16(19, 1 << 18, Bf16), Nudged(20, Words16(19, 1 << 18, Bf16)),
            s_options with { Rans = false }),
        "difference-bf16-version-3" => Chunk(ElementLayout.Word16, Words16(21, 1 << 18, Bf16), Nudged(22, Words16(21, 1 << 18, Bf16)),
            s_options with { FormatVersion = 3 }),
        "tensor-bf16-delta" => Tensor(Words16(23, 5 << 17, Bf16), Nudged(24, Words16(23, 5 << 17, Bf16))),
        "tensor-bf16-delta-version-4" => Tensor(Words16(23, 5 << 17, Bf16), Nudged(24, Words16(23, 5 << 17, Bf16)), s_options with { FormatVersion = 4 }),
        "rans-16-contexts" => Rans(25, 16, ContextRans.DefaultLanes, vectorized: true),
        "rans-16-contexts-32-lanes" => Rans(26, 16, ContextRans.LegacyLanes, vectorized: true),
        "rans-order-0-scalar" => Rans(27, 1, ContextRans.DefaultLanes, vectorized: false),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    private static string Chunk(ElementLayout layout, byte[] chunk, byte[]? baseChunk, CodecOptions? options = null)
    {
        options ??= s_options;
        options = options with { ChunkSize = Math.Max(EncodedTensorFormat.MinChunkSize, (chunk.Length + 3) & ~3) };
        using var codec = new ChunkCodec(options);
        byte[] encoded = new byte[ChunkCodec.MaxEncodedLength(layout, chunk.Length)];
        int length = codec.Encode(layout, chunk, baseChunk, encoded, out ChunkTransform transform);
        return $"{transform} {length} {XxHash3.HashToUInt64(encoded.AsSpan(0, length)):x16}";
    }

    private static string Tensor(byte[] tensor, byte[] baseTensor, CodecOptions? options = null)
    {
        using var pool = new WorkerPool(1, (options ?? s_options) with { ChunkSize = 1 << 18 });
        byte[] encoded = TensorCodec.Encode(ElementLayout.Word16, tensor, baseTensor, pool);
        return $"Tensor {encoded.Length} {XxHash3.HashToUInt64(encoded):x16}";
    }

    private static string Rans(ulong seed, int contextCount, int lanes, bool vectorized)
    {
        var bits = new Bits(seed);
        const int Length = 200_003;
        byte[] symbols = new byte[Length], contexts = new byte[contextCount == 1 ? 0 : Length];
        for (int i = 0; i < Length; i++)
        {
            int context = contextCount == 1 ? 0 : (int)(bits.Next() % (uint)contextCount);
            if (contexts.Length > 0)
            {
                contexts[i] = (byte)context;
            }
            // A spread that grows with the context: sums of small draws, near-Gaussian without floating point.
            symbols[i] = (byte)(bits.Small(4) * (uint)(1 + context % 4));
        }
        byte[] encoded = new byte[ContextRans.MaxEncodedLength(Length, contextCount)];
        int length = new ContextRans().Encode(symbols, contexts, contextCount, encoded, vectorized, lanes);
        return $"Rans {length} {XxHash3.HashToUInt64(encoded.AsSpan(0, length)):x16}";
    }

    private static ushort Bf16(Bits bits) => (ushort)((bits.Next() & 1) << 15 | (118 + bits.Small(4)) << 7 | (bits.Next() & 0x7F));

    private static ushort F16(Bits bits) => (ushort)((bits.Next() & 1) << 15 | (4 + bits.Small(4)) << 10 | (bits.Next() & 0x3FF));

    /// <summary><paramref name="count"/> 16-bit words of weights' statistics, little-endian.</summary>
    private static byte[] Words16(ulong seed, int count, Func<Bits, ushort> word)
    {
        var bits = new Bits(seed);
        byte[] bytes = new byte[2 * count];
        for (int i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), word(bits));
        }
        return bytes;
    }

    /// <summary>BF16 words filling <paramref name="length"/> bytes, an odd last byte included.</summary>
    private static byte[] Bytes16(ulong seed, int length)
    {
        byte[] words = Words16(seed, (length + 1) / 2, Bf16);
        return words.AsSpan(0, length).ToArray();
    }

    private static byte[] Words32(ulong seed, int count)
    {
        var bits = new Bits(seed);
        byte[] bytes = new byte[4 * count];
        for (int i = 0; i < count; i++)
        {
            uint word = (bits.Next() & 1) << 31 | (118 + bits.Small(4)) << 23 | (bits.Next() & 0x7FFFFF);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4 * i), word);
        }
        return bytes;
    }

    /// <summary>Bytes of a skewed distribution (an int8 tensor's).</summary>
    private static byte[] Bytes(ulong seed, int length)
    {
        var bits = new Bits(seed);
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)(bits.Small(8) - 12);
        }
        return bytes;
    }

    /// <summary>A copy with the low bits of one word in <paramref name="every"/> changed, as BitX's finetunes are.</summary>
    private static byte[] Near(ulong seed, byte[] tensor, int every)
    {
        var bits = new Bits(seed);
        byte[] copy = (byte[])tensor.Clone();
        for (int i = 0; i < copy.Length; i++)
        {
            if (bits.Next() % (uint)every == 0)
            {
                copy[i] ^= (byte)(1 + bits.Next() % 7);
            }
        }
        return copy;
    }

    /// <summary>A copy of 16-bit words with half of them moved by a few units in the last place, as training moves them.</summary>
    private static byte[] Nudged(ulong seed, byte[] tensor)
    {
        var bits = new Bits(seed);
        byte[] copy = (byte[])tensor.Clone();
        for (int i = 0; i + 1 < copy.Length; i += 2)
        {
            if ((bits.Next() & 1) == 0)
            {
                ushort word = BinaryPrimitives.ReadUInt16LittleEndian(copy.AsSpan(i));
                BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(i), (ushort)(word + bits.Small(2) - 3));
            }
        }
        return copy;
    }

    /// <summary>
    /// A copy of BF16 words as a retrained model holds them: the exponent moved by -1 to 1 (mostly kept), the mantissa
    /// drawn anew, one sign in 16 flipped; what the words share with the base is their exponent and sign.
    /// </summary>
    private static byte[] Retrained(ulong seed, byte[] tensor)
    {
        var bits = new Bits(seed);
        byte[] copy = (byte[])tensor.Clone();
        for (int i = 0; i + 1 < copy.Length; i += 2)
        {
            ushort word = BinaryPrimitives.ReadUInt16LittleEndian(copy.AsSpan(i));
            int exponent = ((word >> 7) & 0xFF) + (int)bits.Small(1) / 2 - 1 + (int)(bits.Next() & 1) * ((int)bits.Small(1) / 3);
            int sign = (word >> 15) ^ ((bits.Next() & 15) == 0 ? 1 : 0);
            BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(i), (ushort)(sign << 15 | (exponent & 0xFF) << 7 | (int)(bits.Next() & 0x7F)));
        }
        return copy;
    }

    /// <summary>xorshift64: the same numbers on every machine and runtime.</summary>
    private sealed class Bits(ulong seed)
    {
        private ulong _state = seed * 0x9E3779B97F4A7C15UL | 1;

        public uint Next()
        {
            _state ^= _state << 13;
            _state ^= _state >> 7;
            _state ^= _state << 17;
            return (uint)(_state >> 32);
        }

        /// <summary>The sum of <paramref name="draws"/> draws of 0 to 3: near-Gaussian, from 0 to 3 * draws.</summary>
        public uint Small(int draws)
        {
            uint sum = 0;
            for (int i = 0; i < draws; i++)
            {
                sum += Next() & 3;
            }
            return sum;
        }
    }
}
