
namespace ZipLlm.Codecs;

/// <summary>
/// Which transform a delta chunk is stored by (<see cref="ChunkTransform"/>): for 16-bit floats the ordered difference
/// when it is good, else the difference, XOR, context XOR and solo weighed by estimates and only the likely winners coded;
/// for F32 XOR and the context XOR both coded, for other words XOR; and solo too when the delta came out poor. Never
/// larger than the chunk stored solo when a delta looks poor. The thresholds are <see cref="CodecTuning"/>'s;
/// <see cref="StreamCoder"/> does the coding. Holds a trial buffer, so it is not thread-safe: each
/// <see cref="ChunkCodec"/> has its own.
/// </summary>
internal sealed class TransformChooser : IDisposable
{
    private readonly CodecOptions _options;
    private readonly StreamCoder _coder;
    // A candidate coded beside the one in the destination, to keep the smaller.
    private readonly ScratchBuffer _trial;

    /// <summary>A chooser that codes by <paramref name="coder"/>, which it does not own.</summary>
    public TransformChooser(CodecOptions options, StreamCoder coder)
    {
        _options = options;
        _coder = coder;
        _trial = new ScratchBuffer(coder.Buffers);
    }

    /// <summary>
    /// Encodes <paramref name="chunk"/> into <paramref name="destination"/> (at least <paramref name="bound"/> bytes): solo
    /// when <paramref name="baseChunk"/> is empty, else against it by the transform that stores it smallest.
    /// </summary>
    /// <returns>Bytes written.</returns>
    public int Encode(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination, int bound,
        out ChunkTransform transform)
    {
        if (baseChunk.IsEmpty)
        {
            transform = ChunkTransform.Solo;
            return _coder.EncodeSplit(layout, ChunkTransform.Solo, chunk, default, destination);
        }
        if (layout.IsHalfWord() && _options.OrderedDifference)
        {
            return EncodeHalfWordDelta(layout, chunk, baseChunk, destination, bound, out transform);
        }
        int best = _coder.EncodeSplit(layout, ChunkTransform.Xor, chunk, baseChunk, destination);
        transform = ChunkTransform.Xor;
        if (_options.WritesContextXor && StreamCoder.FitsContextXor(layout, chunk.Length))
        {
            // F32 (few and small tensors in a checkpoint): the context XOR is coded beside the XOR, not estimated.
            best = Better(best, ref transform, _coder.EncodeContextXor(layout, chunk, baseChunk, _trial.Get(bound)), ChunkTransform.ContextXor, destination);
        }
        if (best <= chunk.Length * CodecTuning.GoodXor)
        {
            return best;
        }
        // A poor delta (a far finetune, or bytes that merely share a name): solo may well be smaller.
        return Better(best, ref transform, _coder.EncodeSplit(layout, ChunkTransform.Solo, chunk, default, _trial.Get(bound)), ChunkTransform.Solo, destination);
    }

    /// <summary>
    /// A delta of 16-bit floats: the ordered difference when it is good (the common case, coded once); otherwise the
    /// difference, XOR, context XOR (an even-length chunk, format 5) and solo are compared by estimates from their symbol counts and a zstd probe, and only the winner is
    /// coded, or every candidate within <see cref="CodecTuning.CloseEstimates"/> of it. Solo is coded too, and the smaller kept, unless
    /// the coded delta came out at least <see cref="CodecTuning.CloseEstimates"/> below solo's estimate, a margin wider than the
    /// estimate's error. The synthetic family's store came out exactly as large as with every coding tried; a test holds the
    /// choice within 1% of trying every coding, and never above solo.
    /// </summary>
    private int EncodeHalfWordDelta(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination, int bound,
        out ChunkTransform transform)
    {
        long difference = _coder.ForwardDifference(layout, chunk, baseChunk, out int escaped);
        if (difference <= chunk.Length * CodecTuning.GoodDifference)
        {
            transform = ChunkTransform.OrderedDifference;
            return _coder.WriteDifference(chunk, escaped, destination, counted: true);
        }
        bool contextXor = _options.WritesContextXor && StreamCoder.FitsContextXor(layout, chunk.Length);
        long xor = -1, solo = -1, context = long.MaxValue;
        if (chunk.Length >= CodecTuning.EstimateMinLength && !_options.TrialEveryCoding)
        {
            xor = _coder.EstimateSplit(layout, chunk, baseChunk);
            solo = _coder.EstimateSplit(layout, chunk, default);
        }
        if (xor < 0 || solo < 0)
        {
            // Small chunks, or streams only a trial can judge (sparse ones): code every candidate.
            int best = difference == long.MaxValue ? int.MaxValue : _coder.WriteDifference(chunk, escaped, destination, counted: false);
            transform = ChunkTransform.OrderedDifference;
            best = Better(best, ref transform, _coder.EncodeSplit(layout, ChunkTransform.Xor, chunk, baseChunk, _trial.Get(bound)), ChunkTransform.Xor, destination);
            if (contextXor)
            {
                best = Better(best, ref transform, _coder.EncodeContextXor(layout, chunk, baseChunk, _trial.Get(bound)), ChunkTransform.ContextXor, destination);
            }
            return Better(best, ref transform, _coder.EncodeSplit(layout, ChunkTransform.Solo, chunk, default, _trial.Get(bound)), ChunkTransform.Solo, destination);
        }
        if (contextXor)
        {
            context = _coder.EstimateContextXor(layout, chunk, baseChunk);
        }
        long least = Math.Min(Math.Min(difference, context), Math.Min(xor, solo));
        long close = least + (long)(least * CodecTuning.CloseEstimates);
        int written = int.MaxValue;
        transform = ChunkTransform.Solo;
        if (difference <= close)
        {
            written = _coder.WriteDifference(chunk, escaped, destination, counted: false);
            transform = ChunkTransform.OrderedDifference;
        }
        written = CodeIfClose(xor <= close, written, ref transform, ChunkTransform.Xor, layout, chunk, baseChunk, destination, bound);
        written = CodeIfClose(context <= close, written, ref transform, ChunkTransform.ContextXor, layout, chunk, baseChunk, destination, bound);
        // Solo is coded too when it is close, or when the delta came out above solo's estimate less its margin of error.
        if (written == int.MaxValue)
        {
            transform = ChunkTransform.Solo;
            return _coder.EncodeSplit(layout, ChunkTransform.Solo, chunk, default, destination);
        }
        if (solo <= close || written > solo - (long)(solo * CodecTuning.CloseEstimates))
        {
            return Better(written, ref transform, _coder.EncodeSplit(layout, ChunkTransform.Solo, chunk, default, _trial.Get(bound)), ChunkTransform.Solo, destination);
        }
        return written;
    }

    /// <summary>
    /// Codes the delta <paramref name="candidate"/> when it is <paramref name="close"/> to the best estimate: into the
    /// destination when nothing is there yet, else into the trial buffer, keeping the smaller. Returns the bytes in the
    /// destination (<see cref="int.MaxValue"/> for none).
    /// </summary>
    private int CodeIfClose(bool close, int written, ref ChunkTransform transform, ChunkTransform candidate, ElementLayout layout,
        ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination, int bound)
    {
        if (!close)
        {
            return written;
        }
        if (written == int.MaxValue)
        {
            transform = candidate;
            // Nothing was coded since the estimates: a context XOR, estimated last, takes up its streams and counts.
            return candidate == ChunkTransform.ContextXor
                ? _coder.EncodeContextXor(layout, chunk, baseChunk, destination, estimated: true)
                : EncodeDelta(candidate, layout, chunk, baseChunk, destination);
        }
        return Better(written, ref transform, EncodeDelta(candidate, layout, chunk, baseChunk, _trial.Get(bound)), candidate, destination);
    }

    /// <summary>Codes the chunk by the split delta <paramref name="candidate"/> (XOR or context XOR).</summary>
    private int EncodeDelta(ChunkTransform candidate, ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination) =>
        candidate == ChunkTransform.ContextXor
            ? _coder.EncodeContextXor(layout, chunk, baseChunk, destination)
            : _coder.EncodeSplit(layout, candidate, chunk, baseChunk, destination);

    /// <summary>
    /// Keeps the smaller of the encoding in <paramref name="destination"/> and one in the trial buffer; on a tie, a solo
    /// candidate, which decodes without reading the base.
    /// </summary>
    private int Better(int best, ref ChunkTransform transform, int candidate, ChunkTransform candidateTransform, Span<byte> destination)
    {
        if (candidate > best || (candidate == best && candidateTransform != ChunkTransform.Solo))
        {
            return best;
        }
        _trial.Get(candidate).CopyTo(destination);
        transform = candidateTransform;
        return candidate;
    }

    /// <inheritdoc/>
    public void Dispose() => _trial.Dispose();
}
