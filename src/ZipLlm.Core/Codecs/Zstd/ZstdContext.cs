using ZipLlm.Config;
using ZipLlm.Domain;
namespace ZipLlm.Codecs.Zstd;

/// <summary>Which zstd implementation a <see cref="ZstdContext"/> runs on.</summary>
internal enum ZstdBackend
{
    /// <summary>The system's libzstd (libzstd.so.1), called directly: about 1.6x faster than the managed port.</summary>
    Native,

    /// <summary>ZstdSharp, the managed port of zstd: always available.</summary>
    Managed,
}

/// <summary>
/// One worker's zstd state: a compression and a decompression context, reused call after call.
/// Both backends read and write standard zstd frames, so either decodes what the other wrote.
/// Not thread-safe: give each worker its own.
/// </summary>
internal abstract class ZstdContext : IDisposable
{
    /// <summary>
    /// Environment variable that picks the backend: <c>native</c>, <c>managed</c>, or unset for
    /// native when libzstd loads and managed otherwise.
    /// </summary>
    public const string BackendVariable = "ZIPLLM_ZSTD";

    private static readonly Lazy<ZstdBackend> DefaultBackend = new(ChooseBackend);

    /// <summary>The backend <see cref="Create()"/> uses in this process.</summary>
    /// <exception cref="ArgumentException"><c>ZIPLLM_ZSTD</c> has a value other than native or managed.</exception>
    /// <exception cref="PlatformNotSupportedException"><c>ZIPLLM_ZSTD=native</c> and libzstd cannot be loaded.</exception>
    public static ZstdBackend Default => DefaultBackend.Value;

    /// <summary>Whether the system's libzstd could be loaded.</summary>
    public static bool NativeAvailable => LibZstd.IsAvailable;

    /// <summary>One line for logs: which zstd this process uses, and why when it is not the native one.</summary>
    public static string Describe() => Default == ZstdBackend.Native
        ? $"native libzstd {LibZstd.Version}"
        : LibZstd.IsAvailable
            ? $"managed ZstdSharp ({BackendVariable}=managed)"
            : $"managed ZstdSharp ({LibZstd.LoadError})";

    /// <summary>This context's backend.</summary>
    public abstract ZstdBackend Backend { get; }

    /// <summary>Creates a context on the process's default backend.</summary>
    public static ZstdContext Create() => Create(Default);

    /// <summary>Creates a context on <paramref name="backend"/>.</summary>
    /// <exception cref="PlatformNotSupportedException">The native backend was asked for and libzstd cannot be loaded.</exception>
    public static ZstdContext Create(ZstdBackend backend) => backend switch
    {
        ZstdBackend.Native => new NativeZstdContext(),
        ZstdBackend.Managed => new ManagedZstdContext(),
        _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, "Unknown zstd backend."),
    };

    /// <summary>Largest frame zstd writes for <paramref name="length"/> input bytes (zstd's ZSTD_COMPRESSBOUND).</summary>
    public static int CompressBound(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        const int SmallLimit = 128 << 10;
        long bound = (long)length + (length >> 8) + (length < SmallLimit ? (SmallLimit - length) >> 11 : 0);
        return checked((int)bound);
    }

    /// <summary>
    /// What <see cref="FrameContentSize"/> returns for a frame whose header does not declare its content size
    /// (zstd's <c>ZSTD_CONTENTSIZE_UNKNOWN</c>).
    /// </summary>
    public const ulong ContentSizeUnknown = ulong.MaxValue;

    /// <summary>
    /// What <see cref="FrameContentSize"/> returns for bytes that do not start with a whole, valid frame header
    /// (zstd's <c>ZSTD_CONTENTSIZE_ERROR</c>).
    /// </summary>
    public const ulong ContentSizeError = ulong.MaxValue - 1;

    /// <summary>Compresses <paramref name="source"/> into one zstd frame at <paramref name="level"/>, with its content size and no checksum.</summary>
    /// <returns>Bytes written to <paramref name="destination"/>.</returns>
    /// <exception cref="ArgumentException">The destination is smaller than <see cref="CompressBound"/>.</exception>
    public int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level) =>
        Compress(source, destination, level, contentChecksum: false);

    /// <summary>
    /// Compresses <paramref name="source"/> into one zstd frame at <paramref name="level"/>, with its content size,
    /// and when <paramref name="contentChecksum"/> the XXH64 checksum of its content that the <c>zstd</c> command
    /// writes by default (the store's chunks carry their own checksums and leave it out).
    /// </summary>
    /// <returns>Bytes written to <paramref name="destination"/>.</returns>
    /// <exception cref="ArgumentException">The destination is smaller than <see cref="CompressBound"/>.</exception>
    public int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level, bool contentChecksum)
    {
        if (destination.Length < CompressBound(source.Length))
        {
            throw new ArgumentException("Destination is smaller than CompressBound.", nameof(destination));
        }
        return CompressCore(source, destination, level, contentChecksum);
    }

    /// <summary>
    /// The content size the header of the zstd frame at the start of <paramref name="source"/> declares, read
    /// without decoding anything; <paramref name="source"/> needs to hold only the frame header (at most 18 bytes).
    /// </summary>
    /// <returns>The size, <see cref="ContentSizeUnknown"/>, or <see cref="ContentSizeError"/>.</returns>
    public static ulong FrameContentSize(ReadOnlySpan<byte> source) => ManagedZstdContext.ReadFrameContentSize(source);

    /// <summary>Finds the length of the whole zstd frame (standard or skippable) at the start of <paramref name="source"/>, without decoding it.</summary>
    /// <returns>Whether <paramref name="source"/> holds a whole, well-formed frame.</returns>
    public static bool TryGetFrameCompressedSize(ReadOnlySpan<byte> source, out long size) =>
        ManagedZstdContext.TryFindFrameCompressedSize(source, out size);

    /// <summary>
    /// Decompresses zstd frames that must fill <paramref name="destination"/> exactly. The destination's size
    /// bounds the work, so a corrupt or hostile frame can never make zstd write past it or allocate for it.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is not valid zstd, or does not decompress to exactly the destination's length.</exception>
    public void DecompressExact(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        int written = DecompressCore(source, destination);
        if (written != destination.Length)
        {
            throw new InvalidDataException($"zstd data decompressed to {written} bytes where {destination.Length} are expected.");
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Compresses into a destination known to be large enough.</summary>
    protected abstract int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination, int level, bool contentChecksum);

    /// <summary>Decompresses; throws <see cref="InvalidDataException"/> on invalid data or too small a destination.</summary>
    protected abstract int DecompressCore(ReadOnlySpan<byte> source, Span<byte> destination);

    /// <summary>Frees the contexts.</summary>
    protected abstract void Dispose(bool disposing);

    private static ZstdBackend ChooseBackend()
    {
        string? wanted = Environment.GetEnvironmentVariable(BackendVariable);
        if (string.Equals(wanted, "managed", StringComparison.OrdinalIgnoreCase))
        {
            return ZstdBackend.Managed;
        }
        if (!string.IsNullOrEmpty(wanted) && !string.Equals(wanted, "native", StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"{BackendVariable} must be \"native\" or \"managed\" (or unset), not \"{wanted}\".");
        }
        if (string.Equals(wanted, "native", StringComparison.OrdinalIgnoreCase) && !LibZstd.IsAvailable)
        {
            throw new PlatformNotSupportedException($"{BackendVariable}=native, but libzstd could not be loaded: {LibZstd.LoadError}");
        }
        return LibZstd.IsAvailable ? ZstdBackend.Native : ZstdBackend.Managed;
    }
}
