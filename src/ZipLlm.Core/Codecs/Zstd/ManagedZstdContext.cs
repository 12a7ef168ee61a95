using ZstdSharp;

namespace ZipLlm.Codecs.Zstd;

/// <summary>zstd through ZstdSharp, the managed port.</summary>
internal sealed class ManagedZstdContext : ZstdContext
{
    private readonly Dictionary<int, Compressor> _compressors = [];
    private readonly Decompressor _decompressor = new();

    public override ZstdBackend Backend => ZstdBackend.Managed;

    protected override int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination, int level)
    {
        if (!_compressors.TryGetValue(level, out Compressor? compressor))
        {
            compressor = new Compressor(level);
            _compressors[level] = compressor;
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
