using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using ZipLlm.Safetensors;

namespace ZipLlm.Synthetic;

/// <summary>
/// Produces a tensor's bytes block by block. A block is <see cref="BlockElements"/> elements
/// (the last may be shorter) and depends only on the seed, the tensor and its index, so blocks can
/// be made in parallel, in any order, and a tensor's bytes do not depend on the file it lands in.
/// </summary>
internal abstract class TensorFill
{
    /// <summary>Elements per block. Part of the output's definition: changing it changes every byte.</summary>
    public const int BlockElements = 1 << 18;

    /// <summary>Writes the elements <c>[block * BlockElements, + count)</c> to <paramref name="destination"/>.</summary>
    public abstract void Fill(long block, int count, Span<byte> destination);
}

/// <summary>Bytes made up front: the small tensors of the standalone model.</summary>
internal sealed class BytesFill(byte[] bytes, int elementSize) : TensorFill
{
    public override void Fill(long block, int count, Span<byte> destination) =>
        bytes.AsSpan(checked((int)(block * BlockElements * elementSize)), count * elementSize).CopyTo(destination);
}

/// <summary>The variant of a Llama weight a model holds.</summary>
internal enum LlamaVariant
{
    Base,
    FullFinetune,
    LoraFinetune,
    VocabExtended,
    F16,
    FarFinetune,
    ChannelScaled,
    ChainFinetune,
    Retrained,
}

/// <summary>One weight of a synthetic Llama model, in one of its variants.</summary>
internal sealed class LlamaFill : TensorFill
{
    // Stream tags keep each purpose's random numbers apart.
    private const ulong TagBase = 1, TagFullDelta = 2, TagVocabDelta = 3, TagLoraA = 4, TagLoraB = 5, TagFarDelta = 6, TagChannels = 7,
        TagRowScales = 8, TagColumnScales = 9, TagChainDelta = 10,
        TagRetrainedNoise = 11, TagRetrainedRows = 12, TagRetrainedSpread = 13;

    /// <summary>A retrained weight's multiplicative noise: its standard deviation, per tensor, between these shares of the weight.</summary>
    private const float RetrainedNoiseMin = 0.5f, RetrainedNoiseMax = 0.8f;

    /// <summary>Share of a retrained model's weights whose sign flips (beside those the noise itself takes across zero).</summary>
    private const float RetrainedSignFlips = 0.03f;

    /// <summary>Standard deviation of the log of a retrained row's scale drift: rows within about 0.9x to 1.1x of the base's.</summary>
    private const float RetrainedRowLogStd = 0.05f;

    /// <summary>Standard deviation of the log of a channel's scale: rows and columns within about 0.6x to 1.6x of each other.</summary>
    private const float ChannelLogStd = 0.5f;

    /// <summary>Standard deviation of the merged LoRA update B·A: about 5% of the weights' scale.</summary>
    private const float LoraDeltaStd = 1e-3f;

    private readonly ulong _seed;
    private readonly ulong _nameHash;
    private readonly LlamaTensor _tensor;
    private readonly LlamaVariant _variant;
    private readonly float[]? _loraA; // [rank, columns]
    private readonly float[]? _loraB; // [rows, rank]
    private readonly float[]? _rowScales;
    private readonly float[]? _columnScales;
    private readonly long _columns;
    private readonly float _retrainedNoise;

    public LlamaFill(int seed, LlamaTensor tensor, LlamaVariant variant)
    {
        _seed = (ulong)(uint)seed;
        _nameHash = XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(tensor.Name));
        _tensor = tensor;
        _variant = variant;
        _columns = tensor.Shape.Length == 2 ? tensor.Shape[1] : tensor.ElementCount;
        if (variant == LlamaVariant.LoraFinetune && tensor.IsLoraTarget)
        {
            int rank = LlamaArchitecture.LoraRank;
            long rows = tensor.Shape[0];
            // var(B·A) = rank · σA² · σB², so σA = σB = sqrt(target / sqrt(rank)).
            float factorStd = MathF.Sqrt(LoraDeltaStd / MathF.Sqrt(rank));
            _loraA = Normals(Xoshiro256.Key(_seed, _nameHash, TagLoraA, 0), checked((int)(rank * _columns)), factorStd);
            _loraB = Normals(Xoshiro256.Key(_seed, _nameHash, TagLoraB, 0), checked((int)(rows * rank)), factorStd);
        }
        if (variant == LlamaVariant.ChannelScaled && tensor.Shape.Length == 2)
        {
            _rowScales = LogNormals(Xoshiro256.Key(_seed, _nameHash, TagRowScales, 0), checked((int)tensor.Shape[0]), ChannelLogStd);
            _columnScales = LogNormals(Xoshiro256.Key(_seed, _nameHash, TagColumnScales, 0), checked((int)_columns), ChannelLogStd);
        }
        if (variant == LlamaVariant.Retrained)
        {
            // Each tensor moved its own amount, as layers of a retrained model do.
            double unit = (new Xoshiro256(Xoshiro256.Key(_seed, _nameHash, TagRetrainedSpread, 0)).Next() >> 11) * (1.0 / (1UL << 53));
            _retrainedNoise = RetrainedNoiseMin + (float)unit * (RetrainedNoiseMax - RetrainedNoiseMin);
            _rowScales = LogNormals(Xoshiro256.Key(_seed, _nameHash, TagRetrainedRows, 0), checked((int)(tensor.ElementCount / _columns)), RetrainedRowLogStd);
        }
    }

    public DType DType => _variant == LlamaVariant.F16 ? DType.F16 : DType.BF16;

    public override void Fill(long block, int count, Span<byte> destination)
    {
        var baseRng = new Xoshiro256(Xoshiro256.Key(_seed, _nameHash, TagBase, (ulong)block));
        Span<ushort> values = MemoryMarshal.Cast<byte, ushort>(destination[..(count * 2)]);
        float mean = _tensor.Mean, std = _tensor.Std, deltaStd = _tensor.DeltaStd;
        switch (_variant)
        {
            case LlamaVariant.Base:
                for (int i = 0; i < count; i++)
                {
                    values[i] = FloatBits.ToBf16(mean + std * baseRng.NextNormal());
                }
                break;

            case LlamaVariant.F16:
                for (int i = 0; i < count; i++)
                {
                    ushort bf16 = FloatBits.ToBf16(mean + std * baseRng.NextNormal());
                    values[i] = FloatBits.ToF16(FloatBits.FromBf16(bf16));
                }
                break;

            case LlamaVariant.FullFinetune:
            case LlamaVariant.VocabExtended:
                ulong tag = _variant == LlamaVariant.FullFinetune ? TagFullDelta : TagVocabDelta;
                var deltaRng = new Xoshiro256(Xoshiro256.Key(_seed, _nameHash, tag, (ulong)block));
                for (int i = 0; i < count; i++)
                {
                    // The finetune starts from the base's BF16 value, as training from the checkpoint does.
                    float baseValue = FloatBits.FromBf16(FloatBits.ToBf16(mean + std * baseRng.NextNormal()));
                    values[i] = FloatBits.ToBf16(baseValue + deltaStd * deltaRng.NextNormal());
                }
                break;

            case LlamaVariant.ChainFinetune:
                var fullRng = new Xoshiro256(Xoshiro256.Key(_seed, _nameHash, TagFullDelta, (ulong)block));
                var chainRng = new Xoshiro256(Xoshiro256.Key(_seed, _nameHash, TagChainDelta, (ulong)block));
                for (int i = 0; i < count; i++)
                {
                    // Trained from the full finetune's BF16 weights, half as far again as it went from the base.
                    float baseValue = FloatBits.FromBf16(FloatBits.ToBf16(mean + std * baseRng.NextNormal()));
                    float fullValue = FloatBits.FromBf16(FloatBits.ToBf16(baseValue + deltaStd * fullRng.NextNormal()));
                    values[i] = FloatBits.ToBf16(fullValue + 0.5f * deltaStd * chainRng.NextNormal());
                }
                break;

            case LlamaVariant.FarFinetune:
                var farRng = new Xoshiro256(Xoshiro256.Key(_seed, _nameHash, TagFarDelta, (ulong)block));
                for (int i = 0; i < count; i++)
                {
                    // Moved by as much as the weights' own spread: about as far from the base as an unrelated model.
                    float baseValue = FloatBits.FromBf16(FloatBits.ToBf16(mean + std * baseRng.NextNormal()));
                    values[i] = FloatBits.ToBf16(baseValue + std * farRng.NextNormal());
                }
                break;

            case LlamaVariant.ChannelScaled:
                var channelRng = new Xoshiro256(Xoshiro256.Key(_seed, _nameHash, TagChannels, (ulong)block));
                long start = block * BlockElements;
                for (int i = 0; i < count; i++)
                {
                    float scale = 1f;
                    if (_rowScales is not null)
                    {
                        long element = start + i;
                        scale = _rowScales[element / _columns] * _columnScales![element % _columns];
                    }
                    values[i] = FloatBits.ToBf16(mean + std * scale * channelRng.NextNormal());
                }
                break;

            case LlamaVariant.Retrained:
                var noiseRng = new Xoshiro256(Xoshiro256.Key(_seed, _nameHash, TagRetrainedNoise, (ulong)block));
                long from = block * BlockElements;
                for (int i = 0; i < count; i++)
                {
                    // Retrained from the base's BF16 weights: each scaled by its row's drift and by 1 + noise, a few flipped.
                    float baseValue = FloatBits.FromBf16(FloatBits.ToBf16(mean + std * baseRng.NextNormal()));
                    float value = baseValue * _rowScales![(from + i) / _columns] * (1f + _retrainedNoise * noiseRng.NextNormal());
                    bool flip = (noiseRng.Next() >> 40) < (ulong)(RetrainedSignFlips * (1 << 24));
                    values[i] = FloatBits.ToBf16(flip ? -value : value);
                }
                break;

            case LlamaVariant.LoraFinetune:
                long first = block * BlockElements;
                for (int i = 0; i < count; i++)
                {
                    ushort bf16 = FloatBits.ToBf16(mean + std * baseRng.NextNormal());
                    if (_loraA is not null)
                    {
                        long element = first + i;
                        long row = element / _columns, column = element % _columns;
                        float delta = 0f;
                        int rank = LlamaArchitecture.LoraRank;
                        for (int k = 0; k < rank; k++)
                        {
                            delta += _loraB![row * rank + k] * _loraA[k * _columns + column];
                        }
                        bf16 = FloatBits.ToBf16(FloatBits.FromBf16(bf16) + delta);
                    }
                    values[i] = bf16;
                }
                break;

            default:
                throw new InvalidOperationException($"Unknown variant {_variant}.");
        }
        if (!BitConverter.IsLittleEndian)
        {
            // safetensors data is little-endian.
            BinaryPrimitives.ReverseEndianness(values, values);
        }
    }

    private static float[] LogNormals(ulong key, int count, float logStd)
    {
        float[] values = Normals(key, count, logStd);
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = MathF.Exp(values[i]);
        }
        return values;
    }

    private static float[] Normals(ulong key, int count, float std)
    {
        var rng = new Xoshiro256(key);
        var values = new float[count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = std * rng.NextNormal();
        }
        return values;
    }
}
