namespace ZipLlm.Codecs.Zstd;

/// <summary>zstd through the system's libzstd.</summary>
internal sealed unsafe class NativeZstdContext : ZstdContext
{
    private nint _cctx;
    private nint _dctx;

    public NativeZstdContext()
    {
        if (!LibZstd.IsAvailable)
        {
            throw new PlatformNotSupportedException($"libzstd could not be loaded: {LibZstd.LoadError}");
        }
        _cctx = LibZstd.CreateCCtx();
        _dctx = LibZstd.CreateDCtx();
        if (_cctx == 0 || _dctx == 0)
        {
            Dispose(disposing: false);
            throw new OutOfMemoryException("libzstd could not allocate a context.");
        }
    }

    ~NativeZstdContext() => Dispose(disposing: false);

    public override ZstdBackend Backend => ZstdBackend.Native;

    protected override int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination, int level, bool contentChecksum)
    {
        ObjectDisposedException.ThrowIf(_cctx == 0, this);
        nuint result;
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            if (contentChecksum)
            {
                // ZSTD_compressCCtx ignores every parameter but the level, so a checksum takes the parameter API;
                // both are set on every call, as they stick to the context.
                SetParameter(LibZstd.CompressionLevelParameter, level);
                SetParameter(LibZstd.ChecksumFlagParameter, 1);
                result = LibZstd.Compress2(_cctx, dst, (nuint)destination.Length, src, (nuint)source.Length);
            }
            else
            {
                result = LibZstd.CompressCCtx(_cctx, dst, (nuint)destination.Length, src, (nuint)source.Length, level);
            }
        }
        if (LibZstd.IsError(result))
        {
            // The destination holds the compress bound, so only a bug or an out-of-memory gets here.
            throw new InvalidOperationException($"zstd compression failed: {LibZstd.ErrorName(result)}");
        }
        return checked((int)result);
    }

    private void SetParameter(int parameter, int value)
    {
        nuint result = LibZstd.SetParameter(_cctx, parameter, value);
        if (LibZstd.IsError(result))
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"zstd refused parameter {parameter}: {LibZstd.ErrorName(result)}");
        }
    }

    protected override int DecompressCore(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_dctx == 0, this);
        nuint result;
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            result = LibZstd.DecompressDCtx(_dctx, dst, (nuint)destination.Length, src, (nuint)source.Length);
        }
        if (LibZstd.IsError(result))
        {
            throw new InvalidDataException($"Not a valid zstd frame: {LibZstd.ErrorName(result)}");
        }
        return checked((int)result);
    }

    protected override void Dispose(bool disposing)
    {
        if (_cctx != 0)
        {
            LibZstd.FreeCCtx(_cctx);
            _cctx = 0;
        }
        if (_dctx != 0)
        {
            LibZstd.FreeDCtx(_dctx);
            _dctx = 0;
        }
    }
}
