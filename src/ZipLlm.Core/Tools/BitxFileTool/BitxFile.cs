using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Codecs.Zstd;
using ZipLlm.Safetensors;
using ZipLlm.IO;

namespace ZipLlm.Tools.BitxFileTool;

/// <summary>
/// The standalone BitX file tool of the original ZipLLM, in its exact format (the store codes BitX deltas with
/// <see cref="ChunkCodec"/> and <see cref="TensorCodec"/> instead): compresses a finetune file against its base
/// into two zstd files (exponent stream, sign+mantissa stream) and back. The delta image is the finetune with
/// each safetensors tensor XOR-ed with the base tensor it pairs with under <see cref="DeltaPairing.Rule.ExactShape"/>
/// (same name, dtype and shape; the header and unpaired tensors as they
/// are); when either input is not a valid safetensors file, it is the finetune XOR the base over their
/// common prefix. The image is split as little-endian 16-bit words (see <see cref="Bf16Split"/>), and each
/// chunk of each stream becomes one standard zstd frame, compressed in parallel and written in order.
/// Memory is bounded by the thread count and the chunk size, not by the files.
/// </summary>
internal static class BitxFile
{
    private static readonly TimeSpan s_progressInterval = TimeSpan.FromSeconds(5);

    /// <summary>Compresses <paramref name="finetunePath"/> against <paramref name="basePath"/> into the two stream files.</summary>
    /// <param name="basePath">The base model file (safetensors, or any file).</param>
    /// <param name="finetunePath">The file to compress.</param>
    /// <param name="exponentPath">Where to write the exponent stream (replaced atomically).</param>
    /// <param name="signMantissaPath">Where to write the sign+mantissa stream (replaced atomically).</param>
    /// <param name="options">Threads, zstd level and chunk size; defaults when null.</param>
    /// <param name="logger">Receives progress and details; none when null.</param>
    /// <param name="cancellationToken">Stops the work; no output file is left behind.</param>
    /// <exception cref="ArgumentException">A path is empty, or an output path names an input.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The options are out of range.</exception>
    /// <exception cref="IOException">An input cannot be read or an output cannot be written.</exception>
    public static BitxResult Compress(string basePath, string finetunePath, string exponentPath, string signMantissaPath,
        BitxOptions? options = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        options ??= BitxOptions.Default;
        options.Validate();
        logger ??= NullLogger.Instance;
        CheckPaths([basePath, finetunePath], [exponentPath, signMantissaPath]);
        var clock = Stopwatch.StartNew();

        using SafeFileHandle ft = OpenInput(finetunePath);
        using SafeFileHandle bas = OpenInput(basePath);
        long ftLength = RandomAccess.GetLength(ft), baseLength = RandomAccess.GetLength(bas);
        DeltaPlan plan = PlanFor(basePath, finetunePath, ftLength, baseLength, logger);
        var header = new BitxHeader(plan.Mode, ftLength, options.ChunkSize, baseLength);
        long chunkCount = header.ChunkCount;

        using var expOut = new AtomicFileWriter(exponentPath);
        using var smOut = new AtomicFileWriter(signMantissaPath);
        header.Write(expOut.Stream, BitxStream.Exponent);
        header.Write(smOut.Stream, BitxStream.SignMantissa);
        var digest = new XxHash3();
        var progress = new Progress(logger, ftLength);
        var buffers = new ChunkBufferPool();
        using (var workers = new OrderedWorkers<EncodeContext>(options.EffectiveThreads, () => new EncodeContext(options.Level, options.ChunkSize, buffers)))
        {
            workers.Run<EncodedFrames>(chunkCount,
                index => context => context.Encode(header, index, ft, finetunePath, plan, bas, basePath),
                (index, frames) =>
                {
                    try
                    {
                        expOut.Stream.Write(frames.Exponent.AsSpan(0, frames.ExponentLength));
                        smOut.Stream.Write(frames.SignMantissa.AsSpan(0, frames.SignMantissaLength));
                    }
                    finally
                    {
                        buffers.Return(frames.Exponent);
                        buffers.Return(frames.SignMantissa);
                    }
                    AppendDigest(digest, frames.Hash);
                    progress.Advance(header.ChunkLength(index));
                },
                cancellationToken);
        }
        ulong ftDigest = digest.GetCurrentHashAsUInt64();
        BitxHeader.WriteTrailer(expOut.Stream, chunkCount, ftDigest);
        BitxHeader.WriteTrailer(smOut.Stream, chunkCount, ftDigest);
        long expLength = expOut.Commit();
        long smLength = smOut.Commit();
        return new BitxResult(plan.Mode, plan.PairedTensors, ftLength, expLength, smLength, clock.Elapsed);
    }

    /// <summary>
    /// Rebuilds the finetune file from the two stream files and its base, checks it against the digest
    /// recorded at compression, and only then moves it to <paramref name="outputPath"/>.
    /// </summary>
    /// <param name="basePath">The same base file the streams were made against.</param>
    /// <param name="exponentPath">The exponent-stream file.</param>
    /// <param name="signMantissaPath">The sign+mantissa-stream file.</param>
    /// <param name="outputPath">Where to write the finetune file (replaced atomically).</param>
    /// <param name="options">Only <see cref="BitxOptions.Threads"/> is used; the chunk size comes from the files.</param>
    /// <param name="logger">Receives progress and details; none when null.</param>
    /// <param name="cancellationToken">Stops the work; no output file is left behind.</param>
    /// <exception cref="InvalidDataException">
    /// A stream file is not a BitX file, is corrupt or truncated, the two files do not belong together, or the
    /// base is not the one they were made against.
    /// </exception>
    /// <exception cref="NotSupportedException">The files were written by a newer format version.</exception>
    /// <exception cref="ArgumentException">A path is empty, or the output path names an input.</exception>
    /// <exception cref="IOException">An input cannot be read or the output cannot be written.</exception>
    public static BitxResult Decompress(string basePath, string exponentPath, string signMantissaPath, string outputPath,
        BitxOptions? options = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        options ??= BitxOptions.Default;
        options.Validate();
        logger ??= NullLogger.Instance;
        CheckPaths([basePath, exponentPath, signMantissaPath], [outputPath]);
        var clock = Stopwatch.StartNew();

        using SafeFileHandle bas = OpenInput(basePath);
        long baseLength = RandomAccess.GetLength(bas);
        using FileStream expIn = OpenSequential(exponentPath);
        using FileStream smIn = OpenSequential(signMantissaPath);
        using var expReader = new ZstdFrameReader(expIn, exponentPath);
        using var smReader = new ZstdFrameReader(smIn, signMantissaPath);
        BitxHeader header = BitxHeader.Read(expReader, BitxStream.Exponent, exponentPath);
        if (BitxHeader.Read(smReader, BitxStream.SignMantissa, signMantissaPath) != header)
        {
            throw new InvalidDataException($"{exponentPath} and {signMantissaPath} were not written by the same compression.");
        }
        if (header.BaseLength != baseLength)
        {
            throw new InvalidDataException(
                $"{basePath}: the base is {baseLength} bytes, but {exponentPath} was made against a base of {header.BaseLength} bytes.");
        }
        DeltaPlan plan = header.Mode == BitxMode.Raw
            ? DeltaPlan.Raw(header.ImageLength, baseLength)
            : DeltaPlan.Tensors(ReadFinetuneHeader(header, exponentPath, signMantissaPath), ReadBaseHeader(basePath));
        logger.LogDebug("Decompressing {Bytes} bytes in {Mode} mode, {Paired} tensors paired with the base", header.ImageLength, plan.Mode, plan.PairedTensors);

        long chunkCount = header.ChunkCount;
        var digest = new XxHash3();
        var progress = new Progress(logger, header.ImageLength);
        using var output = new AtomicFileWriter(outputPath);
        var buffers = new ChunkBufferPool();
        using (var workers = new OrderedWorkers<DecodeContext>(options.EffectiveThreads, () => new DecodeContext(header.ChunkSize, buffers)))
        {
            workers.Run<DecodedChunk>(chunkCount,
                index =>
                {
                    int length = header.ChunkLength(index);
                    RentedFrame exp = CopyFrame(expReader.ReadZstdFrame(BitxFormat.ExponentLength(length), $"chunk {index}'s frame"), buffers);
                    RentedFrame sm = CopyFrame(smReader.ReadZstdFrame(BitxFormat.SignMantissaLength(length), $"chunk {index}'s frame"), buffers);
                    return context => context.DecodeChunk(header, index, exp, sm, plan, bas, basePath);
                },
                (index, chunk) =>
                {
                    try
                    {
                        output.Stream.Write(chunk.Bytes.AsSpan(0, chunk.Length));
                    }
                    finally
                    {
                        buffers.Return(chunk.Bytes);
                    }
                    AppendDigest(digest, chunk.Hash);
                    progress.Advance(chunk.Length);
                },
                cancellationToken);
        }
        ulong expDigest = BitxHeader.ReadTrailer(expReader, chunkCount, exponentPath);
        ulong smDigest = BitxHeader.ReadTrailer(smReader, chunkCount, signMantissaPath);
        if (expDigest != smDigest)
        {
            throw new InvalidDataException($"{exponentPath} and {signMantissaPath} were not written by the same compression (digests differ).");
        }
        if (digest.GetCurrentHashAsUInt64() != expDigest)
        {
            throw new InvalidDataException(
                $"{outputPath}: the rebuilt file does not match the digest recorded at compression: {basePath} is not the base it was made against, or the BitX files are corrupt.");
        }
        output.Commit();
        return new BitxResult(plan.Mode, plan.PairedTensors, header.ImageLength, expIn.Length, smIn.Length, clock.Elapsed);
    }

    private static DeltaPlan PlanFor(string basePath, string finetunePath, long ftLength, long baseLength, ILogger logger)
    {
        SafetensorsHeader? ftHeader = TryReadHeader(finetunePath, logger);
        SafetensorsHeader? baseHeader = ftHeader is null ? null : TryReadHeader(basePath, logger);
        if (ftHeader is null || baseHeader is null || ftHeader.FileLength != ftLength || baseHeader.FileLength != baseLength)
        {
            logger.LogDebug("Pairing {Finetune} with {Base} byte for byte over {Bytes} bytes", finetunePath, basePath, Math.Min(ftLength, baseLength));
            return DeltaPlan.Raw(ftLength, baseLength);
        }
        DeltaPlan plan = DeltaPlan.Tensors(ftHeader, baseHeader);
        logger.LogDebug("Pairing {Finetune} with {Base} tensor by tensor: {Paired} of {Count} tensors paired",
            finetunePath, basePath, plan.PairedTensors, ftHeader.Tensors.Count);
        return plan;
    }

    private static SafetensorsHeader? TryReadHeader(string path, ILogger logger)
    {
        try
        {
            using SafetensorsFile file = SafetensorsFile.Open(path);
            return file.Header;
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or NotSupportedException)
        {
            logger.LogDebug("{Path} is not a valid safetensors file ({Reason}); pairing byte for byte", path, ex.Message);
            return null;
        }
    }

    private static SafetensorsHeader ReadBaseHeader(string basePath)
    {
        try
        {
            using SafetensorsFile file = SafetensorsFile.Open(basePath);
            return file.Header;
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or NotSupportedException)
        {
            throw new InvalidDataException($"The BitX files were made against a safetensors base, but {ex.Message}", ex);
        }
    }

    /// <summary>
    /// In tensor mode the finetune's length prefix and header lie unchanged at the start of the image:
    /// decodes just enough leading chunks, without any XOR, to read them.
    /// </summary>
    private static SafetensorsHeader ReadFinetuneHeader(BitxHeader header, string exponentPath, string signMantissaPath)
    {
        using FileStream expIn = OpenSequential(exponentPath);
        using FileStream smIn = OpenSequential(signMantissaPath);
        using var expReader = new ZstdFrameReader(expIn, exponentPath);
        using var smReader = new ZstdFrameReader(smIn, signMantissaPath);
        BitxHeader.Read(expReader, BitxStream.Exponent, exponentPath);
        BitxHeader.Read(smReader, BitxStream.SignMantissa, signMantissaPath);
        var buffers = new ChunkBufferPool();
        using var context = new DecodeContext(header.ChunkSize, buffers);
        ChunkBuffer chunk = buffers.Rent(header.ChunkSize);
        try
        {
            byte[]? prefix = null;
            long have = 0, need = SafetensorsFormat.LengthPrefixSize;
            for (long index = 0; have < need; index++)
            {
                if (index >= header.ChunkCount)
                {
                    throw new InvalidDataException($"{exponentPath}: the image is too short ({header.ImageLength} bytes) to hold the safetensors header its mode implies.");
                }
                int length = header.ChunkLength(index);
                ReadOnlySpan<byte> exp = expReader.ReadZstdFrame(BitxFormat.ExponentLength(length), $"chunk {index}'s frame");
                ReadOnlySpan<byte> sm = smReader.ReadZstdFrame(BitxFormat.SignMantissaLength(length), $"chunk {index}'s frame");
                context.Merge(exp, sm, default, chunk.AsSpan(0, length));
                if (prefix is null)
                {
                    // The first chunk holds the whole 8-byte length prefix: chunks are at least 16 bytes.
                    if (length < SafetensorsFormat.LengthPrefixSize)
                    {
                        throw new InvalidDataException($"{exponentPath}: the image of {header.ImageLength} bytes is too short for a safetensors file.");
                    }
                    ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(chunk.AsSpan());
                    if (headerLength > SafetensorsFormat.MaxHeaderSize || (long)headerLength > header.ImageLength - SafetensorsFormat.LengthPrefixSize)
                    {
                        throw new InvalidDataException($"{exponentPath}: the image's safetensors header length {headerLength} is impossible; the files are corrupt.");
                    }
                    need = SafetensorsFormat.LengthPrefixSize + (long)headerLength;
                    prefix = new byte[need];
                }
                int take = (int)Math.Min(length, need - have);
                chunk.AsSpan(0, take).CopyTo(prefix.AsSpan((int)have));
                have += take;
            }
            byte[] headerBytes = prefix![SafetensorsFormat.LengthPrefixSize..];
            return SafetensorsHeader.Parse(headerBytes, header.ImageLength - need, $"{exponentPath} (finetune header)");
        }
        finally
        {
            buffers.Return(chunk);
        }
    }

    private static void AppendDigest(XxHash3 digest, ulong chunkHash)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, chunkHash);
        digest.Append(bytes);
    }

    private static RentedFrame CopyFrame(ReadOnlySpan<byte> frame, ChunkBufferPool buffers)
    {
        ChunkBuffer copy = buffers.Rent(frame.Length);
        frame.CopyTo(copy.AsSpan());
        return new RentedFrame(copy, frame.Length);
    }

    private static SafeFileHandle OpenInput(string path) =>
        File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);

    private static FileStream OpenSequential(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);

    private static void CheckPaths(string[] inputs, string[] outputs)
    {
        foreach (string path in inputs.Concat(outputs))
        {
            ArgumentException.ThrowIfNullOrEmpty(path);
        }
        StringComparison comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        string[] all = [.. inputs.Concat(outputs).Select(Path.GetFullPath)];
        for (int i = inputs.Length; i < all.Length; i++)
        {
            for (int j = 0; j < i; j++)
            {
                if (string.Equals(all[i], all[j], comparison))
                {
                    throw new ArgumentException($"{all[i]}: an output path must differ from every other input and output path.");
                }
            }
        }
    }

    /// <summary>One worker's zstd context and chunk-sized scratch buffers.</summary>
    private sealed class EncodeContext : IDisposable
    {
        private readonly ZstdContext _zstd = ZstdContext.Create();
        private readonly int _level;
        private readonly ChunkBuffer _finetune, _base, _exponent, _signMantissa;

        private readonly ChunkBufferPool _buffers;

        public EncodeContext(int level, int chunkSize, ChunkBufferPool buffers)
        {
            _buffers = buffers;
            _level = level;
            _finetune = _buffers.Rent(chunkSize);
            _base = _buffers.Rent(chunkSize);
            _exponent = _buffers.Rent(BitxFormat.ExponentLength(chunkSize));
            _signMantissa = _buffers.Rent(BitxFormat.SignMantissaLength(chunkSize));
        }

        public EncodedFrames Encode(BitxHeader header, long index, SafeFileHandle ft, string ftName, DeltaPlan plan, SafeFileHandle bas, string baseName)
        {
            long offset = index * header.ChunkSize;
            int length = header.ChunkLength(index);
            Span<byte> chunk = _finetune.AsSpan(0, length);
            PositionalRead.ReadExactly(ft, chunk, offset, ftName);
            ulong hash = XxHash3.HashToUInt64(chunk);
            Span<byte> baseChunk = _base.AsSpan(0, length);
            bool xor = plan.FillBase(offset, baseChunk, bas, baseName);

            int words = length / 2, even = 2 * words;
            Span<byte> exp = _exponent.AsSpan(0, BitxFormat.ExponentLength(length));
            Span<byte> sm = _signMantissa.AsSpan(0, BitxFormat.SignMantissaLength(length));
            Bf16Split.Split(chunk[..even], xor ? baseChunk[..even] : default, exp, sm[..words]);
            if (length % 2 != 0)
            {
                // The odd last byte of the image ends the sign+mantissa stream as it is (XOR-ed when paired).
                sm[words] = (byte)(chunk[even] ^ (xor ? baseChunk[even] : 0));
            }

            ChunkBuffer expFrame = _buffers.Rent(ZstdFrameReader.MaxFrameSize(exp.Length));
            ChunkBuffer smFrame = _buffers.Rent(ZstdFrameReader.MaxFrameSize(sm.Length));
            try
            {
                // Like the zstd command: every frame carries a checksum of its content.
                int expLength = _zstd.Compress(exp, expFrame.AsSpan(), _level, contentChecksum: true);
                int smLength = _zstd.Compress(sm, smFrame.AsSpan(), _level, contentChecksum: true);
                return new EncodedFrames(expFrame, expLength, smFrame, smLength, hash);
            }
            catch
            {
                _buffers.Return(expFrame);
                _buffers.Return(smFrame);
                throw;
            }
        }

        public void Dispose()
        {
            _zstd.Dispose();
            _buffers.Return(_finetune);
            _buffers.Return(_base);
            _buffers.Return(_exponent);
            _buffers.Return(_signMantissa);
        }
    }

    private readonly record struct EncodedFrames(ChunkBuffer Exponent, int ExponentLength, ChunkBuffer SignMantissa, int SignMantissaLength, ulong Hash);

    private readonly record struct DecodedChunk(ChunkBuffer Bytes, int Length, ulong Hash);

    /// <summary>A whole zstd frame in a pooled buffer longer than it.</summary>
    private readonly record struct RentedFrame(ChunkBuffer Buffer, int Length)
    {
        public ReadOnlySpan<byte> Span => Buffer.AsSpan(0, Length);
    }

    /// <summary>One worker's zstd context and chunk-sized scratch buffers.</summary>
    private sealed class DecodeContext : IDisposable
    {
        private readonly ZstdContext _zstd = ZstdContext.Create();
        private readonly ChunkBuffer _base, _exponent, _signMantissa;

        private readonly ChunkBufferPool _buffers;

        public DecodeContext(int chunkSize, ChunkBufferPool buffers)
        {
            _buffers = buffers;
            _base = _buffers.Rent(chunkSize);
            _exponent = _buffers.Rent(BitxFormat.ExponentLength(chunkSize));
            _signMantissa = _buffers.Rent(BitxFormat.SignMantissaLength(chunkSize));
        }

        /// <summary>Decodes chunk <paramref name="index"/> from its two frames (returned to the pool here) and undoes the XOR.</summary>
        public DecodedChunk DecodeChunk(BitxHeader header, long index, RentedFrame expFrame, RentedFrame smFrame, DeltaPlan plan, SafeFileHandle bas, string baseName)
        {
            int length = header.ChunkLength(index);
            ChunkBuffer output = _buffers.Rent(length);
            try
            {
                Span<byte> baseChunk = _base.AsSpan(0, length);
                bool xor = plan.FillBase(index * header.ChunkSize, baseChunk, bas, baseName);
                Merge(expFrame.Span, smFrame.Span, xor ? baseChunk : default, output.AsSpan(0, length));
                return new DecodedChunk(output, length, XxHash3.HashToUInt64(output.AsSpan(0, length)));
            }
            catch
            {
                _buffers.Return(output);
                throw;
            }
            finally
            {
                _buffers.Return(expFrame.Buffer);
                _buffers.Return(smFrame.Buffer);
            }
        }

        /// <summary>
        /// Decompresses one frame of each stream (each must be a single frame, found by <see cref="ZstdFrameReader"/>)
        /// and merges them into <paramref name="destination"/>, XOR-ing with <paramref name="baseChunk"/> when not empty.
        /// </summary>
        public void Merge(ReadOnlySpan<byte> expFrame, ReadOnlySpan<byte> smFrame, ReadOnlySpan<byte> baseChunk, Span<byte> destination)
        {
            int length = destination.Length, words = length / 2, even = 2 * words;
            Span<byte> exp = _exponent.AsSpan(0, BitxFormat.ExponentLength(length));
            Span<byte> sm = _signMantissa.AsSpan(0, BitxFormat.SignMantissaLength(length));
            Unwrap(expFrame, exp, "exponent-stream");
            Unwrap(smFrame, sm, "sign+mantissa-stream");
            Bf16Split.Merge(exp, sm[..words], baseChunk.IsEmpty ? default : baseChunk[..even], destination[..even]);
            if (length % 2 != 0)
            {
                destination[even] = (byte)(sm[words] ^ (baseChunk.IsEmpty ? 0 : baseChunk[even]));
            }
        }

        public void Dispose()
        {
            _zstd.Dispose();
            _buffers.Return(_base);
            _buffers.Return(_exponent);
            _buffers.Return(_signMantissa);
        }

        private void Unwrap(ReadOnlySpan<byte> frame, Span<byte> destination, string stream)
        {
            try
            {
                // The destination has exactly the declared size, so a corrupt frame can never make zstd write more.
                _zstd.DecompressExact(frame, destination);
            }
            catch (InvalidDataException ex)
            {
                throw new InvalidDataException($"A {stream} frame is corrupt: {ex.Message}", ex);
            }
        }
    }

    /// <summary>Logs how far a long run is, at most every few seconds.</summary>
    private sealed class Progress(ILogger logger, long total)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private TimeSpan _next = s_progressInterval;
        private long _done;

        public void Advance(long bytes)
        {
            _done += bytes;
            if (_clock.Elapsed >= _next && _done < total)
            {
                _next = _clock.Elapsed + s_progressInterval;
                logger.LogInformation("{Done:F0} of {Total:F0} MB ({Percent:F0}%)", _done / 1e6, total / 1e6, 100.0 * _done / total);
            }
        }
    }
}
