using System.Net;
using System.Net.Http.Headers;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Hub;

/// <summary>The hub's addresses, one GET through <see cref="HubTransportHandler"/>, and the errors its answers and local writes map to.</summary>
internal static class HubRequests
{
    /// <summary>The model's information at <paramref name="revision"/>, whose <c>sha</c> is the commit it points at.</summary>
    public static Uri RevisionUrl(HubClientOptions options, ModelId modelId, string revision) =>
        Combine(options.Endpoint, $"api/models/{modelId}/revision/{Uri.EscapeDataString(revision)}");

    /// <summary>The recursive tree listing (every file, in every folder) of <paramref name="modelId"/> at <paramref name="revision"/>.</summary>
    public static Uri TreeUrl(HubClientOptions options, ModelId modelId, string revision) =>
        Combine(options.Endpoint, $"api/models/{modelId}/tree/{Uri.EscapeDataString(revision)}?recursive=true");

    /// <summary>The content of one file of <paramref name="modelId"/> at <paramref name="revision"/>; the path keeps its folders.</summary>
    public static Uri ResolveUrl(HubClientOptions options, ModelId modelId, string revision, string path) =>
        Combine(options.Endpoint, $"{modelId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}");

    /// <summary>Whether two addresses share scheme, host and port.</summary>
    public static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    /// <summary>
    /// Sends a GET as <paramref name="operation"/> (redirects, token and retries are the transport's);
    /// 2xx and 416 are returned, 401/403/404 and anything else unexpected throw.
    /// </summary>
    /// <exception cref="HubException">The answer is an error, or the transport gave up.</exception>
    public static async Task<HttpResponseMessage> GetAsync(
        HttpClient http, HubClientOptions options, Uri url, RangeHeaderValue? range,
        HubOperation operation, ModelId modelId, string? filePath, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Range = range;
        request.Options.Set(HubTransportHandler.OperationKey, operation);
        HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            return response;
        }
        using (response)
        {
            throw Failure(response, options, modelId, filePath, operation.Subject);
        }
    }

    /// <summary>A failure writing <paramref name="path"/>: disk full, or another local error.</summary>
    public static HubException LocalError(string path, IOException ex)
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

    private static HubException Failure(HttpResponseMessage response, HubClientOptions options, ModelId modelId, string? filePath, string what)
    {
        int status = (int)response.StatusCode;
        string? errorCode = response.Headers.TryGetValues("X-Error-Code", out var codes) ? codes.FirstOrDefault() : null;
        return status switch
        {
            401 or 403 => new HubException(HubErrorKind.Unauthorized, errorCode == "RepoNotFound"
                ? $"{what}: not found, or private ({status}); check the id, or set HF_TOKEN to a token with access."
                : options.Token is null
                    ? $"{what}: access denied ({status}); the model is gated or private: accept its license on the hub and set HF_TOKEN (or run hf auth login)."
                    : $"{what}: access denied ({status}); the token in {options.TokenSource} has no access to this gated or private model.",
                status),
            404 => new HubException(HubErrorKind.NotFound, errorCode == "RevisionNotFound"
                ? $"{what}: no such revision on {options.Endpoint} (404)."
                : filePath is null || errorCode == "RepoNotFound"
                ? $"{modelId}: no such model on {options.Endpoint} (404)."
                : $"{what}: no such file (404).", status),
            _ => new HubException(HubErrorKind.Protocol, $"{what}: unexpected answer {status} {response.ReasonPhrase}.", status),
        };
    }

    private static Uri Combine(Uri endpoint, string relative) => new(endpoint.AbsoluteUri.TrimEnd('/') + "/" + relative);
}
