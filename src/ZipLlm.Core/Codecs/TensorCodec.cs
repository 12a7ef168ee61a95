using System.Buffers.Binary;
using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Codecs;

/// <summary>
/// BitX, the store's codec, over whole tensors: encodes each tensor, solo or as a BitX delta against its
/// base (paired by <see cref="DeltaPairing"/>), into the <see cref="EncodedTensorFormat"/> and decodes it back, chunk by
/// chunk on all workers of a <see cref="WorkerPool"/>, writing in order. At most twice as many chunks as
/// workers are in flight, so memory is bounded by the thread count and the chunk size, not the tensor.
/// </summary>
internal static class TensorCodec
{
    /// <summary>
    /// Encodes <paramref name="source"/> into <paramref name="output"/>: solo when <paramref name="baseSource"/>
    /// is null, otherwise the XOR with it (BitX), recording <paramref name="reference"/> as the base's id.
    /// </summary>
    /// <param name="output">Where the encoded tensor goes.</param>
    /// <param name="layout">How the elements' bytes are grouped into streams.</param>
    /// <param name="source">The tensor's bytes.</param>
    /// <param name="baseSource">The base of a delta, or null for a solo tensor.</param>
    /// <param name="reference">The base's id, recorded in the header (empty for a solo tensor).</param>
    /// <param name="pool">The workers.</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <param name="inspectSource">
    /// Sees each chunk of the source as it was read to be encoded, with its index, on the worker encoding it (in any
    /// order): a caller checks that the bytes it stores are the bytes it named them for, and throws to stop.
    /// </param>
    /// <param name="conversion">How the base's words are converted to the tensor's dtype first (a F16 finetune of a BF16 base).</param>
    /// <param name="transforms">Counts the chunks stored by each <see cref="ChunkTransform"/>, when given.</param>
    /// <returns>
    /// Bytes written, and whether the tensor was stored as a delta: one given a base whose every chunk was smaller solo
    /// is stored solo, without a base reference.
    /// </returns>
    /// <exception cref="ArgumentException">The base's length differs, or the reference is too long or missing.</exception>
    public static EncodeResult Encode(Stream output, ElementLayout layout, IChunkSource source, IChunkSource? baseSource, ReadOnlySpan<byte> reference,
        WorkerPool pool, CancellationToken cancellationToken = default, Action<long, ReadOnlySpan<byte>>? inspectSource = null,
        BaseConversion conversion = BaseConversion.None, TransformCounts? transforms = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(source);
        if (baseSource is not null && baseSource.Length != source.Length)
        {
            throw new ArgumentException($"Base of {baseSource.Length} bytes does not match the tensor's {source.Length}.", nameof(baseSource));
        }
        if ((baseSource is null && !reference.IsEmpty) || reference.Length > EncodedTensorFormat.MaxReferenceLength)
        {
            throw new ArgumentException("A base reference is at most 128 bytes, and a solo tensor has none.", nameof(reference));
        }
        if (conversion != BaseConversion.None && (baseSource is null || !layout.IsHalfWord()))
        {
            throw new ArgumentException("Only the base of a delta of 16-bit floats is converted.", nameof(conversion));
        }
        int chunkSize = pool.Options.ChunkSize;
        long chunkCount = EncodedTensorFormat.ChunkCount(source.Length, chunkSize);
        if (chunkCount > int.MaxValue / 2)
        {
            throw new ArgumentException($"Tensor of {source.Length} bytes has too many chunks.", nameof(source));
        }

        // Whether this is a delta is said in the footer, once every chunk is coded: one whose every chunk came out solo is a solo tensor.
        var fixedPart = new TensorHeader(pool.Options.FormatVersion, EncodedTensorKind.Solo, layout, 0, source.Length, chunkSize, BaseConversion.None);
        Span<byte> header = stackalloc byte[TensorHeader.Size];
        fixedPart.WriteHeader(header);
        output.Write(header);
        long position = header.Length;
        var tensorTransforms = new TransformCounts();

        var offsets = new long[chunkCount];
        pool.RunOrdered(chunkCount,
            (index, codec) =>
            {
                long offset = index * chunkSize;
                int length = (int)Math.Min(chunkSize, source.Length - offset);
                ChunkBuffer chunk = codec.Buffers.Rent(length);
                ChunkBuffer? baseChunk = null;
                try
                {
                    source.ReadChunk(offset, chunk.AsSpan(0, length), codec);
                    inspectSource?.Invoke(index, chunk.AsSpan(0, length));
                    if (baseSource is not null)
                    {
                        baseChunk = codec.Buffers.Rent(length);
                        baseSource.ReadChunk(offset, baseChunk.AsSpan(0, length), codec);
                        HalfConversion.ConvertInPlace(baseChunk.AsSpan(0, length), conversion);
                    }
                    ChunkBuffer encoded = codec.Buffers.Rent(ChunkCodec.MaxEncodedLength(layout, length));
                    int written = codec.Encode(layout, chunk.AsSpan(0, length), baseChunk is null ? default : baseChunk.AsSpan(0, length), encoded.AsSpan(),
                        out ChunkTransform transform);
                    tensorTransforms.Add(transform);
                    return (encoded, written);
                }
                finally
                {
                    codec.Buffers.Return(chunk);
                    if (baseChunk is not null)
                    {
                        codec.Buffers.Return(baseChunk);
                    }
                }
            },
            (index, result) =>
            {
                offsets[index] = position;
                output.Write(result.encoded.AsSpan(0, result.written));
                position += result.written;
                pool.Buffers.Return(result.encoded);
            }, cancellationToken);

        bool delta = baseSource is not null && tensorTransforms.Solo < offsets.Length;
        TensorHeader final = delta ? fixedPart with { Kind = EncodedTensorKind.Delta, ReferenceLength = reference.Length, Conversion = conversion } : fixedPart;
        byte[] footer = new byte[final.FooterLength(offsets.Length)];
        for (int i = 0; i < offsets.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(footer.AsSpan(i * 8), offsets[i]);
        }
        int at = offsets.Length * 8;
        if (delta)
        {
            reference.CopyTo(footer.AsSpan(at));
            at += reference.Length;
        }
        final.WriteTrailer(footer.AsSpan(at), offsets.Length);
        output.Write(footer);
        transforms?.Add(tensorTransforms);
        return new EncodeResult(position + footer.Length, final.Kind);
    }

    /// <summary>Encodes a tensor held in memory; convenient for small tensors and tests.</summary>
    public static byte[] Encode(ElementLayout layout, ReadOnlyMemory<byte> tensor, ReadOnlyMemory<byte>? baseTensor, WorkerPool pool, ReadOnlySpan<byte> reference = default)
    {
        using var output = new MemoryStream();
        Encode(output, layout, RawChunkSource.FromMemory(tensor), baseTensor is null ? null : RawChunkSource.FromMemory(baseTensor.Value),
            reference, pool);
        return output.ToArray();
    }

    /// <summary>
    /// Decodes <paramref name="tensor"/> (with its base set, for a delta) and hands its bytes, in order, to
    /// <paramref name="consume"/> one chunk at a time.
    /// </summary>
    /// <exception cref="InvalidDataException">A chunk is corrupt.</exception>
    public static void Decode(IChunkSource tensor, int chunkSize, WorkerPool pool, Action<ReadOnlySpan<byte>> consume, CancellationToken cancellationToken = default) =>
        Decode([tensor], chunkSize, pool, consume, cancellationToken);

    /// <summary>
    /// Decodes <paramref name="tensors"/> one after the other as one stream of chunks, handing the bytes to
    /// <paramref name="consume"/> in order. The workers run ahead across tensor boundaries, so a file of many
    /// small tensors keeps every worker busy instead of waiting at the end of each tensor.
    /// </summary>
    /// <param name="tensors">The tensors, in output order; one with a <see cref="IChunkSource.ChunkSize"/> (an <see cref="EncodedTensor"/>) is read in its own.</param>
    /// <param name="chunkSize">Chunk size for sources that are not encoded tensors.</param>
    /// <param name="pool">The workers.</param>
    /// <param name="consume">Gets each chunk's bytes, in order, on the calling thread.</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <exception cref="InvalidDataException">A chunk is corrupt.</exception>
    public static void Decode(IReadOnlyList<IChunkSource> tensors, int chunkSize, WorkerPool pool, Action<ReadOnlySpan<byte>> consume,
        CancellationToken cancellationToken = default)
    {
        var chunks = new List<(IChunkSource Tensor, long Offset, int Length)>();
        foreach (IChunkSource tensor in tensors)
        {
            int size = tensor.ChunkSize > 0 ? tensor.ChunkSize : chunkSize;
            for (long offset = 0; offset < tensor.Length; offset += size)
            {
                chunks.Add((tensor, offset, (int)Math.Min(size, tensor.Length - offset)));
            }
        }
        pool.RunOrdered(chunks.Count,
            (index, codec) =>
            {
                (IChunkSource tensor, long offset, int length) = chunks[(int)index];
                ChunkBuffer chunk = codec.Buffers.Rent(length);
                try
                {
                    tensor.ReadChunk(offset, chunk.AsSpan(0, length), codec);
                    return (chunk, length);
                }
                catch
                {
                    codec.Buffers.Return(chunk);
                    throw;
                }
            },
            (_, result) =>
            {
                try
                {
                    consume(result.chunk.AsSpan(0, result.length));
                }
                finally
                {
                    pool.Buffers.Return(result.chunk);
                }
            }, cancellationToken);
    }

    /// <summary>Decodes a whole tensor into memory; convenient for small tensors and tests.</summary>
    /// <exception cref="InvalidDataException">A chunk is corrupt.</exception>
    public static byte[] DecodeToArray(IChunkSource tensor, WorkerPool pool)
    {
        byte[] result = new byte[tensor.Length];
        int position = 0;
        Decode(tensor, pool.Options.ChunkSize, pool, chunk =>
        {
            chunk.CopyTo(result.AsSpan(position));
            position += chunk.Length;
        });
        return result;
    }
}

/// <summary>How many chunks were stored by each <see cref="ChunkTransform"/>; thread-safe.</summary>
internal sealed class TransformCounts
{
    private long _solo, _xor, _difference, _contextXor;

    /// <summary>Chunks stored solo.</summary>
    public long Solo => Interlocked.Read(ref _solo);

    /// <summary>Chunks stored as BitX XOR.</summary>
    public long Xor => Interlocked.Read(ref _xor);

    /// <summary>Chunks stored as an ordered difference.</summary>
    public long OrderedDifference => Interlocked.Read(ref _difference);

    /// <summary>Chunks stored as a context XOR.</summary>
    public long ContextXor => Interlocked.Read(ref _contextXor);

    /// <summary>Counts one chunk.</summary>
    public void Add(ChunkTransform transform)
    {
        switch (transform)
        {
            case ChunkTransform.Solo:
                Interlocked.Increment(ref _solo);
                break;
            case ChunkTransform.Xor:
                Interlocked.Increment(ref _xor);
                break;
            case ChunkTransform.ContextXor:
                Interlocked.Increment(ref _contextXor);
                break;
            default:
                Interlocked.Increment(ref _difference);
                break;
        }
    }

    /// <summary>Adds another count to this one.</summary>
    public void Add(TransformCounts other)
    {
        Interlocked.Add(ref _solo, other.Solo);
        Interlocked.Add(ref _xor, other.Xor);
        Interlocked.Add(ref _difference, other.OrderedDifference);
        Interlocked.Add(ref _contextXor, other.ContextXor);
    }
}

/// <summary>What <see cref="TensorCodec.Encode(Stream, ElementLayout, IChunkSource, IChunkSource?, ReadOnlySpan{byte}, WorkerPool, CancellationToken, Action{long, ReadOnlySpan{byte}}?, BaseConversion, TransformCounts?)"/> wrote.</summary>
/// <param name="Bytes">Bytes written.</param>
/// <param name="Kind">Solo, or a delta that needs its base.</param>
internal readonly record struct EncodeResult(long Bytes, EncodedTensorKind Kind);
