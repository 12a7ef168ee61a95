using ZstdSharp;
using ZstdSharp.Unsafe;

namespace ZipLlm.Codecs.Zstd;

/// <summary>zstd through ZstdSharp, the managed port.</summary>
internal sealed class ManagedZstdContext : ZstdContext
{
    private readonly Dictionary<(int Level, bool Checksum), Compressor> _compressors = [];
    private readonly Decompressor _decompressor = new();

    public override ZstdBackend Backend => ZstdBackend.Managed;

    // Frame inspection only parses headers, so one implementation serves both backends.
    internal static unsafe ulong ReadFrameContentSize(ReadOnlySpan<byte> source)
    {
        fixed (byte* p = source)
        {
            return Methods.ZSTD_getFrameContentSize(p, (nuint)source.Length);
        }
    }

    internal static unsafe bool TryFindFrameCompressedSize(ReadOnlySpan<byte> source, out long size)
    {
        nuint result;
        fixed (byte* p = source)
        {
            result = Methods.ZSTD_findFrameCompressedSize(p, (nuint)source.Length);
        }
        size = Methods.ZSTD_isError(result) ? 0 : (long)result;
        return !Methods.ZSTD_isError(result);
    }

    protected override int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination, int level, bool contentChecksum)
    {
        if (!_compressors.TryGetValue((level, contentChecksum), out Compressor? compressor))
        {
            compressor = new Compressor(level);
            if (contentChecksum)
            {
                compressor.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
            }
            _compressors[(level, contentChecksum)] = compressor;
        }
        return compressor.Wrap(source, destination);
    }

    protected override int DecompressCore(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        try
        {
            return _decompressor.Unwrap(source, destination);
        }
        catch (ZstdException ex)
        {
            throw new InvalidDataException($"Not a valid zstd frame: {ex.Message}", ex);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (!disposing)
        {
            return;
        }
        foreach (Compressor compressor in _compressors.Values)
        {
            compressor.Dispose();
        }
        _compressors.Clear();
        _decompressor.Dispose();
    }
}
