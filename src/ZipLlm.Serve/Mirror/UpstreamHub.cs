using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace ZipLlm.Serve.Mirror;

/// <summary>One file of an upstream revision, as its tree lists it.</summary>
/// <param name="Path">Its path in the repository.</param>
/// <param name="Size">Its length.</param>
/// <param name="Sha256">Its SHA-256 (lowercase hex) when it is an LFS file, else null.</param>
/// <param name="GitOid">Its git blob id when it is kept in git, else null.</param>
public sealed record UpstreamFile(string Path, long Size, string? Sha256, string? GitOid);

/// <summary>A revision of an upstream model: the commit it points at and its files.</summary>
public sealed record UpstreamRevision(string ModelId, string Commit, IReadOnlyList<UpstreamFile> Files);

/// <summary>
/// The hub a mirror fetches from: resolves a revision to its commit and lists its files, opens a file at an offset,
/// and looks at the commit <c>main</c> points at with one HEAD. Redirects are followed by hand (the token goes to the
/// upstream's own origin only); timeouts, dropped connections, 5xx and a <c>429</c> whose <c>Retry-After</c> is short
/// are retried; anything else becomes the hub error a client gets (<see cref="HubStoreRefusal"/>).
/// </summary>
public sealed class UpstreamHub : IDisposable
{
    private const int MaxRedirects = 8;
    private const int MaxListingPages = 1000;
    private const long MaxListingBytes = 64 << 20;
    private const int MaxMessageLength = 200;

    private readonly HttpClient _http;
    private readonly MirrorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _requests;

    /// <summary>Creates the client.</summary>
    /// <param name="options">The upstream, attempts and timeouts.</param>
    /// <param name="time">The clock retries wait on.</param>
    /// <param name="logger">Gets retries.</param>
    /// <param name="handler">Replaces the socket handler (tests); it must not follow redirects.</param>
    public UpstreamHub(MirrorOptions options, TimeProvider time, ILogger logger, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _time = time;
        _logger = logger;
        _http = new HttpClient(handler ?? new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("zipllm-mirror", "1.0"));
    }

    /// <summary>Requests sent upstream so far (each attempt and redirect counts).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>The commit <paramref name="revision"/> of <paramref name="modelId"/> points at, and every file there.</summary>
    /// <exception cref="HubStoreRefusal">Upstream refused (not found, gated, rate-limited) or kept failing.</exception>
    public async Task<UpstreamRevision> ResolveAsync(string modelId, string revision, string? token, CancellationToken cancellationToken) =>
        await ListAsync(modelId, await ResolveCommitAsync(modelId, revision, token, cancellationToken).ConfigureAwait(false), token, cancellationToken).ConfigureAwait(false);

    /// <summary>The commit <paramref name="revision"/> of <paramref name="modelId"/> points at: one request for its information.</summary>
    /// <exception cref="HubStoreRefusal">Upstream refused (not found, gated, rate-limited) or kept failing.</exception>
    public async Task<string> ResolveCommitAsync(string modelId, string revision, string? token, CancellationToken cancellationToken) =>
        ParseCommit(await GetSmallAsync(Url($"api/models/{modelId}/revision/{Uri.EscapeDataString(revision)}"), token, cancellationToken, _ => { }).ConfigureAwait(false), modelId);

    /// <summary>Every file of <paramref name="modelId"/> at <paramref name="commit"/>, from its tree listing (every page).</summary>
    /// <exception cref="HubStoreRefusal">Upstream refused or kept failing, or the listing is malformed.</exception>
    public async Task<UpstreamRevision> ListAsync(string modelId, string commit, string? token, CancellationToken cancellationToken)
    {
        var files = new List<UpstreamFile>();
        Uri? next = Url($"api/models/{modelId}/tree/{commit}?recursive=true");
        for (int page = 0; next is not null; page++)
        {
            if (page == MaxListingPages)
            {
                throw Refuse(502, null, $"{modelId}: the upstream listing has more than {MaxListingPages} pages.");
            }
            Uri? following = null;
            byte[] body = await GetSmallAsync(next, token, cancellationToken, response => following = NextPage(response)).ConfigureAwait(false);
            ParseTree(body, modelId, files);
            next = following;
        }
        return new UpstreamRevision(modelId, commit, files);
    }

    /// <summary>
    /// The commit upstream <c>main</c> of <paramref name="modelId"/> points at, from one HEAD of <paramref name="path"/>
    /// (its <c>X-Repo-Commit</c>), or from the revision's information when the answer has none.
    /// </summary>
    /// <exception cref="HubStoreRefusal">Upstream refused or kept failing.</exception>
    public async Task<string> HeadCommitAsync(string modelId, string path, string? token, CancellationToken cancellationToken)
    {
        using (HttpResponseMessage response = await SendAsync(HttpMethod.Head, ResolveUrl(modelId, "main", path), null, token, followRedirects: false, cancellationToken).ConfigureAwait(false))
        {
            if (response.Headers.TryGetValues("X-Repo-Commit", out IEnumerable<string>? values) && values.FirstOrDefault() is { } commit && IsCommit(commit))
            {
                return commit.ToLowerInvariant();
            }
        }
        byte[] info = await GetSmallAsync(Url($"api/models/{modelId}/revision/main"), token, cancellationToken, _ => { }).ConfigureAwait(false);
        return ParseCommit(info, modelId);
    }

    /// <summary>Whether upstream lets <paramref name="token"/> read <paramref name="modelId"/>: one request for its information.</summary>
    /// <exception cref="HubStoreRefusal">Upstream refused the token (401, 403) or kept failing.</exception>
    public Task CheckAccessAsync(string modelId, string token, CancellationToken cancellationToken) =>
        GetSmallAsync(Url($"api/models/{modelId}/revision/main"), token, cancellationToken, _ => { });

    /// <summary>Opens <paramref name="path"/> at <paramref name="commit"/> from byte <paramref name="offset"/>: a 200 (the whole file) or a 206 from that byte.</summary>
    /// <exception cref="HubStoreRefusal">Upstream refused or kept failing.</exception>
    public Task<HttpResponseMessage> OpenFileAsync(string modelId, string commit, string path, long offset, string? token, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, ResolveUrl(modelId, commit, path), offset > 0 ? new RangeHeaderValue(offset, null) : null, token, followRedirects: true, cancellationToken);

    /// <summary>
    /// Waits before attempt <paramref name="attempt"/> (1 for the first retry): exponential from half a second, at most
    /// <see cref="MirrorOptions.MaxRetryWait"/>, on the injected clock.
    /// </summary>
    public Task BackoffAsync(int attempt, CancellationToken cancellationToken)
    {
        TimeSpan wait = TimeSpan.FromMilliseconds(Math.Min(500 * Math.Pow(2, attempt - 1), _options.MaxRetryWait.TotalMilliseconds));
        return Task.Delay(wait, _time, cancellationToken);
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();

    /// <summary>One request to a final answer, with retries: a success (or a 416) is returned, an error thrown as the client should get it.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, RangeHeaderValue? range, string? token, bool followRedirects, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            TimeSpan? wait;
            HubStoreRefusal failure;
            try
            {
                HttpResponseMessage response = await SendOnceAsync(method, url, range, token, followRedirects, cancellationToken).ConfigureAwait(false);
                int status = (int)response.StatusCode;
                if (response.IsSuccessStatusCode || status is 416 || !followRedirects && status is >= 300 and < 400)
                {
                    return response;
                }
                using (response)
                {
                    (failure, wait) = Failure(response, url);
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException || ex is OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                failure = Refuse(504, null, $"The upstream hub did not answer: {ex.Message}");
                wait = TimeSpan.Zero;
            }
            if (wait is not { } delay || attempt >= _options.MaxAttempts || delay > _options.MaxRetryWait)
            {
                throw failure;
            }
            _logger.LogWarning("Upstream {Url}: {Problem}; attempt {Attempt} of {Attempts}", url.AbsolutePath, failure.Message, attempt + 1, _options.MaxAttempts);
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await BackoffAsync(attempt, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<HttpResponseMessage> SendOnceAsync(HttpMethod method, Uri url, RangeHeaderValue? range, string? token, bool followRedirects, CancellationToken cancellationToken)
    {
        Uri current = url;
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, current);
            request.Headers.Range = range;
            if (token is not null && SameOrigin(current, _options.Upstream))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }
            Interlocked.Increment(ref _requests);
            using var headersTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            headersTimeout.CancelAfter(_options.ReadTimeout);
            HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headersTimeout.Token).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (!followRedirects || status is not (301 or 302 or 303 or 307 or 308) || response.Headers.Location is not { } location)
            {
                return response;
            }
            response.Dispose();
            if (hop == MaxRedirects)
            {
                throw Refuse(502, null, $"The upstream hub redirected more than {MaxRedirects} times.");
            }
            current = new Uri(current, location);
        }
    }

    /// <summary>The client's error for an upstream error answer, and how long to wait before retrying it (null: not retried).</summary>
    private (HubStoreRefusal Failure, TimeSpan? Wait) Failure(HttpResponseMessage response, Uri url)
    {
        int status = (int)response.StatusCode;
        string? code = Header(response, "X-Error-Code");
        string? message = Header(response, "X-Error-Message");
        switch (status)
        {
            case 401 or 403 or 404:
                return (Refuse(status, code ?? (status == 404 ? "RepoNotFound" : null), message ?? $"The upstream hub answered {status} for {url.AbsolutePath}."), null);
            case 429:
                TimeSpan retryAfter = RetryAfter(response) ?? TimeSpan.FromSeconds(1);
                int seconds = (int)Math.Ceiling(retryAfter.TotalSeconds);
                return (Refuse(429, code, message ?? "The upstream hub is rate-limiting this mirror; retry later.", Math.Max(1, seconds)), retryAfter);
            case 408 or >= 500:
                return (Refuse(502, null, $"The upstream hub failed ({status})."), TimeSpan.Zero);
            default:
                return (Refuse(502, null, $"The upstream hub answered {status} for {url.AbsolutePath}."), null);
        }
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        RetryConditionHeaderValue? value = response.Headers.RetryAfter;
        if (value?.Delta is { } delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }
        if (value?.Date is { } date)
        {
            TimeSpan left = date - DateTimeOffset.UtcNow;
            return left < TimeSpan.Zero ? TimeSpan.Zero : left;
        }
        return null;
    }

    /// <summary>A bounded JSON answer (model information, a listing page), retried as a whole when its body is cut.</summary>
    private async Task<byte[]> GetSmallAsync(Uri url, string? token, CancellationToken cancellationToken, Action<HttpResponseMessage> seen)
    {
        for (int attempt = 1; ; attempt++)
        {
            using HttpResponseMessage response = await SendAsync(HttpMethod.Get, url, null, token, followRedirects: true, cancellationToken).ConfigureAwait(false);
            if (response.Content.Headers.ContentLength > MaxListingBytes)
            {
                throw Refuse(502, null, $"The upstream answer for {url.AbsolutePath} is larger than {MaxListingBytes} bytes.");
            }
            try
            {
                using var buffer = new MemoryStream();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_options.ReadTimeout);
                Stream body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    byte[] chunk = new byte[81920];
                    int n;
                    while ((n = await body.ReadAsync(chunk, timeout.Token).ConfigureAwait(false)) > 0)
                    {
                        if (buffer.Length + n > MaxListingBytes)
                        {
                            throw Refuse(502, null, $"The upstream answer for {url.AbsolutePath} is larger than {MaxListingBytes} bytes.");
                        }
                        buffer.Write(chunk, 0, n);
                    }
                }
                seen(response);
                return buffer.ToArray();
            }
            catch (Exception ex) when (ex is HttpRequestException || ex is IOException and not HubStoreRefusal
                || ex is OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                if (attempt >= _options.MaxAttempts)
                {
                    throw Refuse(504, null, $"The upstream hub did not answer: {ex.Message}");
                }
                await BackoffAsync(attempt, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static string ParseCommit(byte[] body, string modelId)
    {
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("sha", out JsonElement sha)
                && sha.ValueKind == JsonValueKind.String && IsCommit(sha.GetString()))
            {
                return sha.GetString()!.ToLowerInvariant();
            }
        }
        catch (JsonException)
        {
        }
        throw Refuse(502, null, $"{modelId}: the upstream model information has no commit (\"sha\").");
    }

    /// <summary>Adds the files of one tree page to <paramref name="files"/>; paths that could leave a folder are refused.</summary>
    private static void ParseTree(byte[] body, string modelId, List<UpstreamFile> files)
    {
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                throw Refuse(502, null, $"{modelId}: the upstream file listing is not a JSON array.");
            }
            foreach (JsonElement entry in document.RootElement.EnumerateArray())
            {
                if (entry.ValueKind != JsonValueKind.Object || Text(entry, "type") != "file")
                {
                    continue;
                }
                if (Text(entry, "path") is not { } raw || !HubPaths.TryNormalize(raw, allowEmpty: false, out string path, out _) || path != raw)
                {
                    throw Refuse(502, null, $"{modelId}: the upstream file listing has an invalid path.");
                }
                UpstreamFile file = entry.TryGetProperty("lfs", out JsonElement lfs) && lfs.ValueKind == JsonValueKind.Object
                    ? new UpstreamFile(path, Size(lfs, modelId), Hex(lfs, "oid", 64, modelId), null)
                    : new UpstreamFile(path, Size(entry, modelId), null, Hex(entry, "oid", 40, modelId));
                files.Add(file);
            }
        }
        catch (JsonException)
        {
            throw Refuse(502, null, $"{modelId}: the upstream file listing is not valid JSON.");
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static long Size(JsonElement element, string modelId) =>
        element.TryGetProperty("size", out JsonElement size) && size.ValueKind == JsonValueKind.Number && size.TryGetInt64(out long value) && value >= 0
            ? value
            : throw Refuse(502, null, $"{modelId}: an upstream file listing entry has no valid size.");

    private static string Hex(JsonElement element, string name, int length, string modelId) =>
        Text(element, name) is { } value && value.Length == length && value.All(char.IsAsciiHexDigit)
            ? value.ToLowerInvariant()
            : throw Refuse(502, null, $"{modelId}: an upstream file listing entry has an invalid {name}.");

    private Uri? NextPage(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Link", out IEnumerable<string>? links))
        {
            return null;
        }
        foreach (string link in links.SelectMany(l => l.Split(',')))
        {
            int open = link.IndexOf('<'), close = link.IndexOf('>');
            if (open >= 0 && close > open && link.Contains("rel=\"next\"", StringComparison.Ordinal))
            {
                var next = new Uri(_options.Upstream, link[(open + 1)..close]);
                return SameOrigin(next, _options.Upstream) ? next : null;
            }
        }
        return null;
    }

    private Uri Url(string relative) => new(_options.Upstream.AbsoluteUri.TrimEnd('/') + "/" + relative);

    private Uri ResolveUrl(string modelId, string revision, string path) =>
        Url($"{modelId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}");

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out IEnumerable<string>? values) ? values.FirstOrDefault() : null;

    /// <summary>Whether <paramref name="text"/> is a commit id: 40 hex digits.</summary>
    public static bool IsCommit(string? text) => text is { Length: 40 } && text.All(char.IsAsciiHexDigit);

    private static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase) && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>A refusal whose message is safe in a header: printable ASCII, one line, bounded.</summary>
    internal static HubStoreRefusal Refuse(int status, string? code, string message, int? retryAfterSeconds = null)
    {
        var safe = new StringBuilder(Math.Min(message.Length, MaxMessageLength));
        foreach (char c in message.AsSpan(0, Math.Min(message.Length, MaxMessageLength)))
        {
            safe.Append(c is >= ' ' and <= '~' ? c : '?');
        }
        string? safeCode = code is not null && code.Length <= 64 && code.All(char.IsAsciiLetterOrDigit) ? code : null;
        return new HubStoreRefusal(status, safeCode, safe.ToString(), retryAfterSeconds);
    }
}
