using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Config;

namespace ZipLlm.Hub;

/// <summary>
/// Downloads models from a Hugging Face hub: lists a repository's files, fetches the safetensors
/// shards and small files several at a time, resumes partial files, retries transient failures
/// with exponential backoff, and checks every file's size and hash before it takes its final name.
/// </summary>
public sealed class HubClient : IDisposable
{
    /// <summary>Suffix of a file being downloaded; renamed away once verified.</summary>
    public const string PartialSuffix = ".part";

    private const int CopyBufferSize = 1 << 20;
    private const int MaxRedirects = 8;
    private const int MaxListingPages = 100;
    private const long MaxListingBytes = 64 << 20;

    private readonly HttpClient _http;
    private readonly HubClientOptions _options;
    private readonly ILogger _logger;

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
        if (options.InitialBackoff < TimeSpan.Zero || options.MaxBackoff < TimeSpan.Zero || options.RequestTimeout <= TimeSpan.Zero || options.ReadTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Backoff must not be negative and timeouts must be positive.", nameof(options));
        }
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        // Redirects are followed by hand so the token goes to the hub's own host only (the CDN
        // URLs it redirects to are signed) and survives same-host redirects of renamed repos.
        handler ??= new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("zipllm", "1.0"));
    }

    /// <summary>Whether the hub answers at all within <paramref name="timeout"/> (any HTTP status counts).</summary>
    public async Task<bool> IsReachableAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
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

    /// <summary>Whether <paramref name="path"/> is a file a model folder needs: safetensors shards and small metadata files at the top level.</summary>
    public static bool IsWanted(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!IsSafeFileName(path))
        {
            return false;
        }
        string extension = System.IO.Path.GetExtension(path).ToLowerInvariant();
        return extension is ".safetensors" or ".json" or ".txt" or ".model"
            || path.StartsWith("tokenizer", StringComparison.OrdinalIgnoreCase)
            || path.Equals("README.md", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Lists every file of <paramref name="modelId"/> at the top of the repository, with sizes and hashes.</summary>
    /// <exception cref="HubException">The model is unknown, gated, or the hub cannot be reached.</exception>
    /// <exception cref="ArgumentException"><paramref name="modelId"/> is not <c>org/name</c>.</exception>
    public async Task<IReadOnlyList<HubFile>> ListFilesAsync(string modelId, CancellationToken cancellationToken = default)
    {
        ModelId.ThrowIfInvalid(modelId);
        var files = new List<HubFile>();
        Uri? next = Combine($"api/models/{modelId}/tree/{Uri.EscapeDataString(_options.Revision)}");
        for (int page = 0; next is not null; page++)
        {
            if (page == MaxListingPages)
            {
                throw new HubException(HubErrorKind.Protocol, $"{modelId}: the file listing has more than {MaxListingPages} pages.");
            }
            Uri current = next;
            (byte[] body, Uri? following) = await WithRetriesAsync($"{modelId}: listing files", async ct =>
            {
                using HttpResponseMessage response = await SendAsync(current, null, modelId, null, ct).ConfigureAwait(false);
                byte[] bytes = await ReadSmallBodyAsync(response, ct).ConfigureAwait(false);
                return (bytes, NextPage(response));
            }, cancellationToken).ConfigureAwait(false);
            ParseTree(body, modelId, files);
            next = following;
        }
        return files;
    }

    /// <summary>
    /// Downloads the wanted files (<see cref="IsWanted"/>) of <paramref name="modelId"/> into
    /// <paramref name="folder"/>: files already complete are skipped, partial ones resumed.
    /// </summary>
    /// <exception cref="HubException">
    /// The model is unknown or gated, lists no safetensors file, a file fails verification, the disk
    /// is full, or the hub keeps failing after every retry.
    /// </exception>
    public async Task<HubDownloadSummary> DownloadModelAsync(
        string modelId, string folder, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        IReadOnlyList<HubFile> listing = await ListFilesAsync(modelId, cancellationToken).ConfigureAwait(false);
        var wanted = listing.Where(f => IsWanted(f.Path)).OrderByDescending(f => f.Size).ToList();
        if (!wanted.Any(f => f.Path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)))
        {
            throw new HubException(HubErrorKind.NotFound, $"{modelId}: the repository has no .safetensors file at its top level.");
        }
        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (IOException ex)
        {
            throw LocalError(folder, ex);
        }

        using var failFast = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var gate = new SemaphoreSlim(_options.MaxConcurrentDownloads);
        int downloaded = 0, skipped = 0;
        long bytes = 0;
        var tasks = wanted.Select(async file =>
        {
            await gate.WaitAsync(failFast.Token).ConfigureAwait(false);
            try
            {
                long received = await DownloadFileAsync(modelId, file, folder, progress, failFast.Token).ConfigureAwait(false);
                if (received < 0)
                {
                    Interlocked.Increment(ref skipped);
                }
                else
                {
                    Interlocked.Increment(ref downloaded);
                    Interlocked.Add(ref bytes, received);
                }
            }
            catch
            {
                // One failure stops the others; their .part files stay for the next run to resume.
                await failFast.CancelAsync().ConfigureAwait(false);
                throw;
            }
            finally
            {
                gate.Release();
            }
        }).ToList();

        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            cancellationToken.ThrowIfCancellationRequested();
            Exception? first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException).FirstOrDefault(e => e is not OperationCanceledException);
            if (first is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            }
            throw;
        }
        return new HubDownloadSummary(modelId, folder, downloaded, skipped, bytes);
    }

    /// <summary>Downloads one file; returns the bytes received, or -1 when it was already complete.</summary>
    private async Task<long> DownloadFileAsync(
        string modelId, HubFile file, string folder, IProgress<HubDownloadProgress>? progress, CancellationToken cancellationToken)
    {
        string finalPath = System.IO.Path.Combine(folder, file.Path);
        string partPath = finalPath + PartialSuffix;
        var existing = new FileInfo(finalPath);
        // A finished file is only ever renamed into place after verification, so its size is proof enough.
        if (existing.Exists && existing.Length == file.Size)
        {
            _logger.LogDebug("{Model}: {File} already complete", modelId, file.Path);
            progress?.Report(new HubDownloadProgress(modelId, file.Path, file.Size, file.Size, Completed: true));
            return -1;
        }

        long received = 0;
        Uri url = Combine($"{modelId}/resolve/{Uri.EscapeDataString(_options.Revision)}/{Uri.EscapeDataString(file.Path)}");
        await WithRetriesAsync($"{modelId}: {file.Path}", async ct =>
        {
            long have = File.Exists(partPath) ? new FileInfo(partPath).Length : 0;
            if (have > file.Size)
            {
                File.Delete(partPath);
                have = 0;
            }
            if (have < file.Size || file.Size == 0)
            {
                received += await FetchIntoPartAsync(modelId, file, url, partPath, have, progress, ct).ConfigureAwait(false);
            }
            return true;
        }, cancellationToken).ConfigureAwait(false);

        await VerifyAsync(modelId, file, partPath, cancellationToken).ConfigureAwait(false);
        try
        {
            File.Move(partPath, finalPath, overwrite: true);
        }
        catch (IOException ex)
        {
            throw LocalError(finalPath, ex);
        }
        _logger.LogDebug("{Model}: {File} downloaded and verified ({Bytes} bytes)", modelId, file.Path, file.Size);
        progress?.Report(new HubDownloadProgress(modelId, file.Path, file.Size, file.Size, Completed: true));
        return received;
    }

    /// <summary>One attempt: requests the missing range and appends it to the part file.</summary>
    private async Task<long> FetchIntoPartAsync(
        string modelId, HubFile file, Uri url, string partPath, long have, IProgress<HubDownloadProgress>? progress, CancellationToken cancellationToken)
    {
        RangeHeaderValue? range = have > 0 ? new RangeHeaderValue(have, null) : null;
        using HttpResponseMessage response = await SendAsync(url, range, modelId, file.Path, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            // The part no longer matches what the server holds: start over on the next attempt.
            File.Delete(partPath);
            throw new TransientException($"the server refused to resume at byte {have}", null);
        }
        if (response.StatusCode == HttpStatusCode.PartialContent)
        {
            long? start = response.Content.Headers.ContentRange?.From;
            if (start != have)
            {
                File.Delete(partPath);
                throw new TransientException($"the server resumed at byte {start?.ToString() ?? "?"} instead of {have}", null);
            }
        }
        else
        {
            have = 0; // A 200 answer is the whole file, whatever was asked.
        }

        FileStream output;
        try
        {
            output = new FileStream(partPath, have == 0 ? FileMode.Create : FileMode.Open, FileAccess.Write, FileShare.None, bufferSize: 0);
            output.Position = have;
        }
        catch (IOException ex)
        {
            throw LocalError(partPath, ex);
        }

        long received = 0;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
        try
        {
            await using (output.ConfigureAwait(false))
            {
                Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    long lastReport = 0;
                    while (true)
                    {
                        int n = await ReadWithTimeoutAsync(body, buffer, cancellationToken).ConfigureAwait(false);
                        if (n == 0)
                        {
                            break;
                        }
                        if (have + received + n > file.Size)
                        {
                            throw new HubException(HubErrorKind.Integrity,
                                $"{modelId}: {file.Path}: the server sent more than the listed {file.Size} bytes.");
                        }
                        try
                        {
                            await output.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                        }
                        catch (IOException ex)
                        {
                            throw LocalError(partPath, ex);
                        }
                        received += n;
                        if (received - lastReport >= CopyBufferSize * 8L)
                        {
                            lastReport = received;
                            progress?.Report(new HubDownloadProgress(modelId, file.Path, have + received, file.Size, Completed: false));
                        }
                    }
                }
                try
                {
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (IOException ex)
                {
                    throw LocalError(partPath, ex);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (have + received < file.Size)
        {
            throw new TransientException($"the transfer ended at byte {have + received} of {file.Size}", null);
        }
        return received;
    }

    private async Task<int> ReadWithTimeoutAsync(Stream body, byte[] buffer, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(_options.ReadTimeout);
        try
        {
            return await body.ReadAsync(buffer, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TransientException($"no data for {_options.ReadTimeout.TotalSeconds:F0} s", ex);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            throw new TransientException($"the connection failed: {ex.Message}", ex);
        }
    }

    private static async Task VerifyAsync(string modelId, HubFile file, string partPath, CancellationToken cancellationToken)
    {
        // Every file, an empty one too, has been fetched into its part file by now.
        long length = File.Exists(partPath) ? new FileInfo(partPath).Length : -1;
        if (length != file.Size)
        {
            File.Delete(partPath);
            throw new HubException(HubErrorKind.Integrity, $"{modelId}: {file.Path}: received {length} bytes, the listing says {file.Size}.");
        }
        string? expected = file.Sha256 ?? file.GitOid;
        if (expected is null)
        {
            return;
        }
        string actual;
        var stream = new FileStream(partPath, FileMode.Open, FileAccess.Read, FileShare.Read, CopyBufferSize, FileOptions.SequentialScan | FileOptions.Asynchronous);
        await using (stream.ConfigureAwait(false))
        {
            if (file.Sha256 is not null)
            {
                actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
            }
            else
            {
                // Git's blob id: SHA-1 over "blob <size>\0" followed by the content.
                using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
                sha1.AppendData(Encoding.ASCII.GetBytes($"blob {file.Size}\0"));
                byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
                try
                {
                    int n;
                    while ((n = await stream.ReadAsync(buffer.AsMemory(0, CopyBufferSize), cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        sha1.AppendData(buffer, 0, n);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
            }
        }
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(partPath);
            string algorithm = file.Sha256 is not null ? "SHA-256" : "git blob id";
            throw new HubException(HubErrorKind.Integrity,
                $"{modelId}: {file.Path}: {algorithm} {actual} does not match the listing's {expected}; the partial file was removed.");
        }
    }

    /// <summary>
    /// Sends a GET, following redirects by hand, and maps final statuses: 2xx and 416 are returned;
    /// 401/403/404 throw <see cref="HubException"/>; 408, 429 and 5xx throw a transient error.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(Uri url, RangeHeaderValue? range, string modelId, string? filePath, CancellationToken cancellationToken)
    {
        Uri current = url;
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, current);
            request.Headers.Range = range;
            if (_options.Token is not null && SameOrigin(current, _options.Endpoint))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.Token);
            }

            HttpResponseMessage response;
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                cts.CancelAfter(_options.RequestTimeout);
                try
                {
                    response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TransientException($"no answer within {_options.RequestTimeout.TotalSeconds:F0} s", ex);
                }
                catch (HttpRequestException ex)
                {
                    throw new TransientException(ex.Message, ex);
                }
            }

            int status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is not null)
            {
                response.Dispose();
                if (hop == MaxRedirects)
                {
                    throw new HubException(HubErrorKind.Protocol, $"{What(modelId, filePath)}: more than {MaxRedirects} redirects.");
                }
                current = new Uri(current, response.Headers.Location);
                continue;
            }
            if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                return response;
            }

            using (response)
            {
                string? errorCode = response.Headers.TryGetValues("X-Error-Code", out var codes) ? codes.FirstOrDefault() : null;
                string what = What(modelId, filePath);
                switch (status)
                {
                    case 401 or 403:
                        throw new HubException(HubErrorKind.Unauthorized, errorCode == "RepoNotFound"
                            ? $"{what}: not found, or private ({status}); check the id, or set HF_TOKEN to a token with access."
                            : _options.Token is null
                                ? $"{what}: access denied ({status}); the model is gated or private: accept its license on the hub and set HF_TOKEN."
                                : $"{what}: access denied ({status}); the token in HF_TOKEN has no access to this gated or private model.",
                            status);
                    case 404:
                        throw new HubException(HubErrorKind.NotFound, filePath is null || errorCode == "RepoNotFound"
                            ? $"{modelId}: no such model on {_options.Endpoint} (404)."
                            : $"{what}: no such file (404).", status);
                    case 408 or 429 or >= 500:
                        throw new TransientException($"the hub answered {status} {response.ReasonPhrase}", null, RetryAfter(response));
                    default:
                        throw new HubException(HubErrorKind.Protocol, $"{what}: unexpected answer {status} {response.ReasonPhrase}.", status);
                }
            }
        }
    }

    /// <summary>Runs <paramref name="attempt"/> until it succeeds, a non-transient error escapes, or the attempts run out.</summary>
    private async Task<T> WithRetriesAsync<T>(string what, Func<CancellationToken, Task<T>> attempt, CancellationToken cancellationToken)
    {
        for (int number = 1; ; number++)
        {
            try
            {
                return await attempt(cancellationToken).ConfigureAwait(false);
            }
            catch (TransientException ex) when (number < _options.MaxAttempts)
            {
                double backoff = Math.Min(_options.MaxBackoff.TotalMilliseconds, _options.InitialBackoff.TotalMilliseconds * Math.Pow(2, number - 1));
                backoff *= 0.8 + 0.4 * Random.Shared.NextDouble();
                TimeSpan delay = TimeSpan.FromMilliseconds(backoff);
                if (ex.RetryAfter is TimeSpan asked)
                {
                    delay = asked > _options.MaxRetryAfter ? _options.MaxRetryAfter : asked;
                }
                _logger.LogWarning("{What}: {Reason}; retrying in {Seconds:F1} s (attempt {Next} of {Max})",
                    what, ex.Message, delay.TotalSeconds, number + 1, _options.MaxAttempts);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
            catch (TransientException ex)
            {
                throw new HubException(HubErrorKind.Network, $"{what}: {ex.Message}; gave up after {number} attempts.", null, ex);
            }
        }
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        RetryConditionHeaderValue? retry = response.Headers.RetryAfter;
        if (retry?.Delta is TimeSpan delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }
        if (retry?.Date is DateTimeOffset date)
        {
            TimeSpan wait = date - DateTimeOffset.UtcNow;
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }
        return null;
    }

    private static async Task<byte[]> ReadSmallBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength > MaxListingBytes)
        {
            throw new HubException(HubErrorKind.Protocol, $"the file listing is larger than {MaxListingBytes} bytes.");
        }
        try
        {
            using var buffer = new MemoryStream();
            Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                byte[] chunk = new byte[81920];
                int n;
                while ((n = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    if (buffer.Length + n > MaxListingBytes)
                    {
                        throw new HubException(HubErrorKind.Protocol, $"the file listing is larger than {MaxListingBytes} bytes.");
                    }
                    buffer.Write(chunk, 0, n);
                }
            }
            return buffer.ToArray();
        }
        catch (Exception ex) when (ex is IOException and not HubException || ex is HttpRequestException)
        {
            throw new TransientException($"the connection failed: {ex.Message}", ex);
        }
    }

    /// <summary>The next page of a paginated listing, from <c>Link: &lt;url&gt;; rel="next"</c>.</summary>
    private Uri? NextPage(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Link", out var links))
        {
            return null;
        }
        foreach (string link in links.SelectMany(l => l.Split(',')))
        {
            int open = link.IndexOf('<'), close = link.IndexOf('>');
            if (open >= 0 && close > open && link.Contains("rel=\"next\"", StringComparison.Ordinal))
            {
                var next = new Uri(_options.Endpoint, link[(open + 1)..close]);
                // Never follow a listing link off the hub: the token would not go there, and nothing should.
                return SameOrigin(next, _options.Endpoint) ? next : null;
            }
        }
        return null;
    }

    private static void ParseTree(byte[] body, string modelId, List<HubFile> files)
    {
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                throw new HubException(HubErrorKind.Protocol, $"{modelId}: the file listing is not a JSON array.");
            }
            foreach (JsonElement entry in document.RootElement.EnumerateArray())
            {
                if (entry.ValueKind != JsonValueKind.Object
                    || !entry.TryGetProperty("type", out JsonElement type) || type.ValueKind != JsonValueKind.String
                    || !entry.TryGetProperty("path", out JsonElement path) || path.ValueKind != JsonValueKind.String)
                {
                    throw new HubException(HubErrorKind.Protocol, $"{modelId}: a file listing entry lacks \"type\" or \"path\".");
                }
                if (type.GetString() != "file")
                {
                    continue;
                }
                string? sha256 = null, gitOid = null;
                long size;
                if (entry.TryGetProperty("lfs", out JsonElement lfs) && lfs.ValueKind == JsonValueKind.Object)
                {
                    sha256 = RequireHex(lfs, "oid", 64, modelId);
                    size = RequireSize(lfs, modelId);
                }
                else
                {
                    size = RequireSize(entry, modelId);
                    gitOid = entry.TryGetProperty("oid", out JsonElement oid) && oid.ValueKind == JsonValueKind.String ? RequireHex(entry, "oid", 40, modelId) : null;
                }
                files.Add(new HubFile(path.GetString()!, size, sha256, gitOid));
            }
        }
        catch (JsonException ex)
        {
            throw new HubException(HubErrorKind.Protocol, $"{modelId}: the file listing is not valid JSON: {ex.Message}", null, ex);
        }
    }

    private static long RequireSize(JsonElement element, string modelId) =>
        element.TryGetProperty("size", out JsonElement size) && size.TryGetInt64(out long value) && value >= 0
            ? value
            : throw new HubException(HubErrorKind.Protocol, $"{modelId}: a file listing entry has no valid \"size\".");

    private static string RequireHex(JsonElement element, string name, int length, string modelId)
    {
        string? value = element.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
        if (value is null || value.Length != length || !value.All(char.IsAsciiHexDigit))
        {
            throw new HubException(HubErrorKind.Protocol, $"{modelId}: a file listing entry has an invalid \"{name}\".");
        }
        return value.ToLowerInvariant();
    }

    /// <summary>A plain file name: no folders, no parent references, nothing hidden.</summary>
    private static bool IsSafeFileName(string path) =>
        path.Length > 0 && path.Length <= 255
        && path.IndexOfAny(['/', '\\', ':', '\0']) < 0
        && path[0] != '.'
        && path.EndsWith(PartialSuffix, StringComparison.Ordinal) is false;

    private Uri Combine(string relative) => new(_options.Endpoint.AbsoluteUri.TrimEnd('/') + "/" + relative);

    private static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    private static string What(string modelId, string? filePath) => filePath is null ? modelId : $"{modelId}: {filePath}";

    private static HubException LocalError(string path, IOException ex)
    {
        if (ex is HubException hub)
        {
            return hub;
        }
        bool diskFull = OperatingSystem.IsWindows()
            ? (ex.HResult & 0xFFFF) is 0x70 or 0x27 // ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL
            : ex.HResult is 28 or 122; // ENOSPC, EDQUOT
        return diskFull
            ? new HubException(HubErrorKind.DiskFull, $"{path}: the disk is full; free some space and run again (the download resumes).", null, ex)
            : new HubException(HubErrorKind.LocalIo, $"{path}: cannot write: {ex.Message}", null, ex);
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();

    /// <summary>A failure worth retrying: timeouts, dropped connections, 408, 429 and 5xx.</summary>
    private sealed class TransientException(string message, Exception? inner, TimeSpan? retryAfter = null) : Exception(message, inner)
    {
        public TimeSpan? RetryAfter { get; } = retryAfter;
    }
}
