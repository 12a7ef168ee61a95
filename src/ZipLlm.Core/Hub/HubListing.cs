using System.Text.Json;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Hub;

/// <summary>
/// Resolves a revision to its commit and lists a repository's files (every folder, recursively): follows the tree
/// listing's pages, each bounded in size and count.
/// </summary>
internal sealed class HubListing(HttpClient http, HubClientOptions options, HubRetryPolicy retry)
{
    private const int MaxPages = 1000;
    private const long MaxPageBytes = 64 << 20;

    /// <summary>The commit <paramref name="revision"/> (a branch, tag or commit) of <paramref name="modelId"/> points at, lower-case hex.</summary>
    /// <exception cref="HubException">The model or revision is unknown, gated, the answer is malformed, or the hub cannot be reached.</exception>
    public async Task<string> ResolveCommitAsync(ModelId modelId, string revision, CancellationToken cancellationToken)
    {
        Uri url = HubRequests.RevisionUrl(options, modelId, revision);
        var operation = new HubOperation($"{modelId}@{revision}", "resolving the revision");
        byte[] body = await retry.RunAsync(operation, async ct =>
        {
            using HttpResponseMessage response = await HubRequests.GetAsync(http, options, url, null, operation, modelId, null, ct).ConfigureAwait(false);
            return await ReadPageAsync(response, ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("sha", out JsonElement sha) && sha.ValueKind == JsonValueKind.String
                && HubRevision.IsCommit(sha.GetString()))
            {
                return sha.GetString()!.ToLowerInvariant();
            }
        }
        catch (JsonException ex)
        {
            throw new HubException(HubErrorKind.Protocol, $"{modelId}@{revision}: the model information is not valid JSON: {ex.Message}", null, ex);
        }
        throw new HubException(HubErrorKind.Protocol, $"{modelId}@{revision}: the model information has no commit (\"sha\").");
    }

    /// <summary>Every file of <paramref name="modelId"/> at <paramref name="revision"/>, in every folder, with sizes and hashes.</summary>
    /// <exception cref="HubException">The model is unknown, gated, the listing is malformed, or the hub cannot be reached.</exception>
    public async Task<IReadOnlyList<HubFile>> ListFilesAsync(ModelId modelId, string revision, CancellationToken cancellationToken)
    {
        var files = new List<HubFile>();
        Uri? next = HubRequests.TreeUrl(options, modelId, revision);
        for (int page = 0; next is not null; page++)
        {
            if (page == MaxPages)
            {
                throw new HubException(HubErrorKind.Protocol, $"{modelId}: the file listing has more than {MaxPages} pages.");
            }
            Uri current = next;
            var operation = new HubOperation(modelId.ToString(), "listing files");
            (byte[] body, Uri? following) = await retry.RunAsync(operation, async ct =>
            {
                using HttpResponseMessage response = await HubRequests.GetAsync(http, options, current, null, operation, modelId, null, ct).ConfigureAwait(false);
                byte[] bytes = await ReadPageAsync(response, ct).ConfigureAwait(false);
                return (bytes, NextPage(response));
            }, cancellationToken).ConfigureAwait(false);
            HubTree.Parse(body, modelId, files);
            next = following;
        }
        return files;
    }

    private static async Task<byte[]> ReadPageAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength > MaxPageBytes)
        {
            throw new HubException(HubErrorKind.Protocol, $"the file listing is larger than {MaxPageBytes} bytes.");
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
                    if (buffer.Length + n > MaxPageBytes)
                    {
                        throw new HubException(HubErrorKind.Protocol, $"the file listing is larger than {MaxPageBytes} bytes.");
                    }
                    buffer.Write(chunk, 0, n);
                }
            }
            return buffer.ToArray();
        }
        catch (Exception ex) when (ex is IOException and not HubException || ex is HttpRequestException)
        {
            throw new HubTransientException($"the connection failed: {ex.Message}", ex);
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
                var next = new Uri(options.Endpoint, link[(open + 1)..close]);
                // Never follow a listing link off the hub: the token would not go there, and nothing should.
                return HubRequests.SameOrigin(next, options.Endpoint) ? next : null;
            }
        }
        return null;
    }
}
