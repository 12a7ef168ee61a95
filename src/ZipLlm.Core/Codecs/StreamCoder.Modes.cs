using System.Buffers.Binary;
using ZipLlm.Codecs.Entropy;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Codecs.Zstd;

namespace ZipLlm.Codecs;

// Each stream's mode: raw, zstd, sparse or rANS, whichever stores it smallest, judged by estimates and probes on large streams; and its reading.
internal sealed partial class StreamCoder
{
    /// <summary>
    /// Stores <paramref name="stream"/> its smallest way, raw, zstd, sparse or rANS (order 0), at <paramref name="destination"/>,
    /// and writes its mode and stored length to <paramref name="entry"/>; returns the stored length, never above the raw one.
    /// </summary>
    private int WriteStream(ReadOnlySpan<byte> stream, int level, Span<byte> entry, Span<byte> destination)
    {
        int n = stream.Length;
        long rans = n >= CodecTuning.RansMinLength && _options.Rans && SampleMayCode(stream) ? _rans.EstimateLength(stream, default, 1, _lanes) : long.MaxValue;
        if (rans > n * CodecTuning.RansMaxRatio)
        {
            rans = long.MaxValue;
        }
        (byte Mode, int Length) best = (EncodedTensorFormat.ModeRaw, n);
        Span<byte> coded = _coded.Get(Math.Max(ZstdContext.CompressBound(n), SparseBytes.BitmapLength(n) + ZstdContext.CompressBound(n) + 8));
        if (n >= CodecTuning.SparseMinLength && stream.Count((byte)0) >= n * CodecTuning.SparseZeroShare)
        {
            int sparse = CompressSparse(stream, level, coded);
            if (sparse < best.Length && sparse < rans)
            {
                best = (EncodedTensorFormat.ModeSparseZstd, sparse);
                coded[..sparse].CopyTo(destination);
            }
        }
        if (n > 0 && best.Mode == EncodedTensorFormat.ModeRaw && WorthZstd(stream, level, rans))
        {
            int written = _zstd.Compress(stream, coded, level);
            if (written < best.Length && written < rans)
            {
                best = (EncodedTensorFormat.ModeZstd, written);
                coded[..written].CopyTo(destination);
            }
        }
        if (rans < best.Length && rans < n)
        {
            Span<byte> ransCoded = _coded.Get(ContextRans.MaxEncodedLength(n, 1));
            // The estimate above counted these symbols; sparse and zstd trials do not touch the rANS coder.
            int written = _rans.EncodeEstimated(stream, default, 1, ransCoded, _lanes);
            if (written < best.Length)
            {
                best = (EncodedTensorFormat.ModeRans, written);
                ransCoded[..written].CopyTo(destination);
            }
        }
        if (best.Mode == EncodedTensorFormat.ModeRaw)
        {
            stream.CopyTo(destination);
        }
        entry[0] = best.Mode;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[1..], (uint)best.Length);
        return best.Length;
    }

    /// <summary>Stores symbols rANS-coded in their contexts, or raw when that is not smaller.</summary>
    private int WriteSymbols(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount, bool counted, Span<byte> entry, Span<byte> destination)
    {
        Span<byte> coded = _coded.Get(ContextRans.MaxEncodedLength(symbols.Length, contextCount));
        int written = counted ? _rans.EncodeEstimated(symbols, contexts, contextCount, coded, _lanes) : _rans.Encode(symbols, contexts, contextCount, coded, _lanes);
        bool coding = written < symbols.Length;
        byte mode = coding ? EncodedTensorFormat.ModeRans : EncodedTensorFormat.ModeRaw;
        ReadOnlySpan<byte> stored = coding ? coded[..written] : symbols;
        stored.CopyTo(destination);
        entry[0] = mode;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[1..], (uint)stored.Length);
        return stored.Length;
    }

    /// <summary>
    /// What <see cref="WriteStream"/> would store a large stream in, from the rANS estimate and a zstd probe of a sample;
    /// -1 when only coding it can tell (short streams, and mostly-zero ones).
    /// </summary>
    private long EstimateStream(ReadOnlySpan<byte> stream, int level)
    {
        int n = stream.Length;
        if (n < CodecTuning.ProbeThreshold || !_options.ProbeIncompressible || (n >= CodecTuning.SparseMinLength && stream.Count((byte)0) >= n * CodecTuning.SparseZeroShare))
        {
            return -1;
        }
        long best = n;
        long rans = _options.Rans && SampleMayCode(stream) ? _rans.EstimateLength(stream, default, 1, _lanes) : long.MaxValue;
        if (rans <= n * CodecTuning.RansMaxRatio)
        {
            best = rans;
        }
        double sampleRatio = ProbeZstd(stream, level);
        if (sampleRatio <= CodecTuning.ProbeRatio)
        {
            best = Math.Min(best, (long)(sampleRatio * n));
        }
        return best;
    }

    /// <summary>
    /// Whether a large stream may be worth rANS-coding, judged from a sample of its middle: a solo sign+mantissa stream
    /// (nearly uniform bytes) is then not counted whole for nothing.
    /// </summary>
    private bool SampleMayCode(ReadOnlySpan<byte> stream)
    {
        if (stream.Length < CodecTuning.ProbeThreshold)
        {
            return true;
        }
        ReadOnlySpan<byte> sample = stream.Slice((stream.Length - CodecTuning.ProbeSize) / 2, CodecTuning.ProbeSize);
        // A little slack: the sample's own table weighs more on its estimate than the whole stream's does.
        return _rans.EstimateLength(sample, default, 1, _lanes) <= CodecTuning.ProbeSize * (CodecTuning.RansMaxRatio + 0.01);
    }

    /// <summary>
    /// Whether zstd is worth running on a stream: small ones always; a large one when a sample of it compresses, and
    /// compresses better than the rANS estimate of the whole (repeats, which order-0 coding cannot see).
    /// </summary>
    private bool WorthZstd(ReadOnlySpan<byte> stream, int level, long ransEstimate)
    {
        if (!_options.ProbeIncompressible || stream.Length < CodecTuning.ProbeThreshold)
        {
            return true;
        }
        double sampleRatio = ProbeZstd(stream, level);
        return sampleRatio <= CodecTuning.ProbeRatio && sampleRatio < (double)ransEstimate / stream.Length;
    }

    /// <summary>What zstd makes of a sample from the middle of a large stream, as a share of the sample.</summary>
    private double ProbeZstd(ReadOnlySpan<byte> stream, int level)
    {
        if (_probe.Length == 0)
        {
            _probe = new byte[ZstdContext.CompressBound(CodecTuning.ProbeSize)];
        }
        // Sample the middle: the start of a tensor is often unrepresentative (padding rows, special tokens).
        ReadOnlySpan<byte> sample = stream.Slice((stream.Length - CodecTuning.ProbeSize) / 2, CodecTuning.ProbeSize);
        return (double)_zstd.Compress(sample, _probe, level) / CodecTuning.ProbeSize;
    }

    /// <summary>Decompresses a stream into <paramref name="destination"/>, or, for a raw one, only checks its length.</summary>
    /// <returns>True when the stream is raw: its bytes are <paramref name="stored"/> as they are.</returns>
    private bool ReadStream(byte mode, ReadOnlySpan<byte> stored, Span<byte> destination, int stream, int lanes)
    {
        if (mode == EncodedTensorFormat.ModeRaw)
        {
            if (stored.Length != destination.Length)
            {
                throw new InvalidDataException($"Raw stream {stream} holds {stored.Length} bytes where {destination.Length} are expected.");
            }
            return true;
        }
        try
        {
            switch (mode)
            {
                case EncodedTensorFormat.ModeZstd:
                    // The destination has exactly the expected size, so a corrupt frame can never make zstd allocate or write more.
                    _zstd.DecompressExact(stored, destination);
                    return false;
                case EncodedTensorFormat.ModeSparseZstd:
                    DecompressSparse(stored, destination);
                    return false;
                case EncodedTensorFormat.ModeRans:
                    _rans.Decode(stored, default, 1, destination, lanes);
                    return false;
                default:
                    throw new InvalidDataException($"unknown mode {mode}.");
            }
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"Stream {stream}: {ex.Message}", ex);
        }
    }
}
