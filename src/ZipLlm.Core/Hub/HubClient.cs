using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Hub;

/// <summary>
/// Downloads models from a Hugging Face hub: lists a repository's files, fetches the safetensors
/// shards and small files several at a time, resumes partial files, retries transient failures
/// with exponential backoff, and checks every file's size and hash before it takes its final name.
/// </summary>
/// <remarks>
/// A facade over <see cref="HubTransportHandler"/> (redirects, token, retries), <see cref="HubListing"/>
/// and <see cref="HubDownloader"/>.
/// </remarks>
internal sealed class HubClient : IDisposable
{
    /// <summary>Suffix of a file being downloaded; renamed away once verified.</summary>
    public const string PartialSuffix = ".part";

    private readonly HttpClient _http;
    private readonly HubClientOptions _options;
    private readonly ILogger _logger;
    private readonly HubListing _listing;
    private readonly HubDownloader _downloader;

    /// <summary>Creates a client.</summary>
    /// <param name="options">Endpoint, token and retry policy.</param>
    /// <param name="logger">Receives retries and per-file results.</param>
    /// <param name="handler">Replaces the default socket handler (tests, proxies); it must not follow redirects itself.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public HubClient(HubClientOptions options, ILogger? logger = null, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAttempts, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConcurrentDownloads, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxConcurrentDownloads, HubClientOptions.MaxDownloads, nameof(options));
        if (HubRevision.Validate(options.Revision) is { } problem)
        {
            throw new ArgumentException($"Hub revision: {problem}.", nameof(options));
        }
        if (options.InitialBackoff < TimeSpan.Zero || options.MaxBackoff < TimeSpan.Zero || options.RequestTimeout <= TimeSpan.Zero || options.ReadTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Backoff must not be negative and timeouts must be positive.", nameof(options));
        }
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        handler ??= new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        var retry = new HubRetryPolicy(options, _logger);
        _http = new HttpClient(new HubTransportHandler(options, retry, handler)) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("zipllm", "1.0"));
        _listing = new HubListing(_http, options, retry);
        _downloader = new HubDownloader(options, _listing, new HubFileDownload(_http, options, retry, _logger));
    }

    /// <summary>Whether the hub answers at all within <paramref name="timeout"/> (any HTTP status counts).</summary>
    /// <remarks>One bare HEAD request: no token, no redirects followed, no retries.</remarks>
    public async Task<bool> IsReachableAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (_options.Offline)
        {
            return false;
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, _options.Endpoint);
            using HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            _logger.LogDebug("Hub {Endpoint} unreachable: {Reason}", _options.Endpoint, ex.Message);
            return false;
        }
    }

    /// <summary>The commit <paramref name="revision"/> (branch, tag or commit; <see cref="HubClientOptions.Revision"/> when null) of <paramref name="modelId"/> points at.</summary>
    /// <exception cref="HubException">The model or revision is unknown, gated, or the hub cannot be reached.</exception>
    public Task<string> ResolveCommitAsync(ModelId modelId, string? revision = null, CancellationToken cancellationToken = default) =>
        _listing.ResolveCommitAsync(modelId, revision ?? _options.Revision, cancellationToken);

    /// <summary>Lists every file of <paramref name="modelId"/> at <paramref name="revision"/> (<see cref="HubClientOptions.Revision"/> when null), in every folder, with sizes and hashes.</summary>
    /// <exception cref="HubException">The model is unknown, gated, or the hub cannot be reached.</exception>
    public Task<IReadOnlyList<HubFile>> ListFilesAsync(ModelId modelId, string? revision = null, CancellationToken cancellationToken = default) =>
        _listing.ListFilesAsync(modelId, revision ?? _options.Revision, cancellationToken);

    /// <summary>
    /// Downloads the files <see cref="HubClientOptions.Files"/> selects of <paramref name="modelId"/> at
    /// <paramref name="revision"/> (<see cref="HubClientOptions.Revision"/> when null) into <paramref name="folder"/>,
    /// keeping their folders: files already complete are skipped, partial ones resumed.
    /// </summary>
    /// <param name="modelId">The model.</param>
    /// <param name="folder">The model folder.</param>
    /// <param name="revision">Branch, tag or commit.</param>
    /// <param name="folderCommit">The commit the folder holds already, when known (its complete files are kept without hashing them).</param>
    /// <param name="progress">Receives the model's files and bytes done so far.</param>
    /// <param name="cancellationToken">Stops the downloads; part files stay to be resumed.</param>
    /// <exception cref="HubException">
    /// The model or revision is unknown or gated, no safetensors file is selected, a file fails verification, the
    /// disk is full, the hub keeps failing after every retry, or <see cref="HubClientOptions.Offline"/> is set.
    /// </exception>
    /// <exception cref="ArgumentException"><paramref name="folder"/> is empty.</exception>
    public Task<HubDownloadSummary> DownloadModelAsync(
        ModelId modelId, string folder, string? revision = null, string? folderCommit = null,
        IProgress<HubTransferProgress>? progress = null, CancellationToken cancellationToken = default) =>
        _downloader.DownloadModelAsync(modelId, folder, revision, folderCommit, progress, cancellationToken);

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();
}
