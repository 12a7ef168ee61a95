using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using ZipLlm.Domain;

namespace ZipLlm.Serve;

/// <summary>
/// The hub's routes, each mapped onto <see cref="IHubStore"/>: model listing and info, the file tree and paths-info,
/// and file downloads (<c>resolve</c> and <c>raw</c>) with ranges and validators. Nothing here knows how a store
/// keeps its bytes.
/// </summary>
internal sealed class HubEndpoints(IHubStore store, TokenTable? tokens, ILogger logger, CancellationToken stopping)
{
    /// <summary>Bytes read from the store per write into the response: the back-pressure step.</summary>
    public const int StreamBufferSize = 256 * 1024;

    /// <summary>Largest <c>paths-info</c> body read.</summary>
    public const int MaxPathsInfoBody = 1 << 20;

    private readonly GitBlobIds _blobIds = new(store);

    /// <summary>The route table.</summary>
    public void Map(IEndpointRouteBuilder routes)
    {
        string[] get = [HttpMethods.Get, HttpMethods.Head];
        routes.MapMethods("/api/models", get, ListModelsAsync);
        routes.MapMethods("/api/models/{org}/{name}", get, ModelInfoAsync);
        routes.MapMethods("/api/models/{org}/{name}/revision/{rev}", get, ModelInfoAsync);
        routes.MapMethods("/api/models/{org}/{name}/tree/{rev}/{**path}", get, TreeAsync);
        routes.MapMethods("/api/models/{org}/{name}/paths-info/{rev}", [HttpMethods.Post], PathsInfoAsync);
        routes.MapMethods("/{org}/{name}/resolve/{rev}/{**path}", get, FileAsync);
        routes.MapMethods("/{org}/{name}/raw/{rev}/{**path}", get, FileAsync);
        routes.MapFallback(HubErrors.NotFound);
    }

    private async Task ListModelsAsync(HttpContext context)
    {
        IQueryCollection query = context.Request.Query;
        string? search = query["search"].ToString() is { Length: > 0 } s ? s : null;
        string? author = query["author"].ToString() is { Length: > 0 } a ? a : null;
        int limit = int.TryParse(query["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out int l) && l > 0 ? l : int.MaxValue;
        TokenGrant? grant = tokens?.Authenticate(context.Request.Headers.Authorization);
        IReadOnlyList<HubModel> models = await store.ListModelsAsync(context.RequestAborted);
        List<ModelInfoJson> listed = models
            .Where(m => tokens is null || grant is not null && grant.Covers(m.Id))
            .Where(m => author is null || string.Equals(m.Author, author, StringComparison.OrdinalIgnoreCase))
            .Where(m => search is null || m.Id.Contains(search, StringComparison.OrdinalIgnoreCase))
            .Take(limit)
            .Select(m => Info(m, null))
            .ToList();
        await HubResponses.WriteJsonAsync(context, JsonSerializer.SerializeToUtf8Bytes(listed, HubJsonContext.Default.ListModelInfoJson));
    }

    private async Task ModelInfoAsync(HttpContext context)
    {
        if (await ResolveAsync(context) is not { } model)
        {
            return;
        }
        var siblings = new List<SiblingJson>(model.Files.Count);
        foreach (HubFile file in model.Files)
        {
            siblings.Add(new SiblingJson
            {
                RFilename = file.Path,
                Size = file.Size,
                BlobId = await _blobIds.GetAsync(model, file, context.RequestAborted),
                Lfs = file.IsLfs ? new SiblingLfsJson { Sha256 = file.Sha256, Size = file.Size, PointerSize = PointerSize(file) } : null,
            });
        }
        await HubResponses.WriteJsonAsync(context, JsonSerializer.SerializeToUtf8Bytes(Info(model, siblings), HubJsonContext.Default.ModelInfoJson));
    }

    private async Task TreeAsync(HttpContext context)
    {
        if (await ResolveAsync(context) is not { } model)
        {
            return;
        }
        if (!HubPaths.TryNormalize(context.GetRouteValue("path") as string, allowEmpty: true, out string folder, out string problem))
        {
            await HubErrors.BadRequest(context, $"Invalid path: {problem}.");
            return;
        }
        IQueryCollection query = context.Request.Query;
        bool recursive = IsTrue(query["recursive"]);
        bool expand = IsTrue(query["expand"]);
        if (folder.Length > 0 && model.FindFile(folder) is not null || folder.Length > 0 && !model.Files.Any(f => f.Path.StartsWith(folder + "/", StringComparison.Ordinal)))
        {
            await HubErrors.EntryNotFound(context, folder);
            return;
        }
        List<string> entries = TreeEntries(model, folder, recursive);
        int pageSize = int.TryParse(query["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out int limit) && limit > 0
            ? Math.Min(limit, HubServerOptions.MaxTreePage) : HubServerOptions.MaxTreePage;
        int cursor = int.TryParse(query["cursor"], NumberStyles.None, CultureInfo.InvariantCulture, out int c) ? Math.Min(c, entries.Count) : 0;
        var page = new List<TreeEntryJson>();
        foreach (string path in entries.Skip(cursor).Take(pageSize))
        {
            page.Add(await EntryAsync(model, path, expand, context.RequestAborted));
        }
        if (cursor + pageSize < entries.Count)
        {
            HttpRequest request = context.Request;
            string next = $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}"
                + $"?recursive={(recursive ? "true" : "false")}&expand={(expand ? "true" : "false")}&limit={pageSize}&cursor={cursor + pageSize}";
            context.Response.Headers.Link = $"<{next}>; rel=\"next\"";
        }
        await HubResponses.WriteJsonAsync(context, JsonSerializer.SerializeToUtf8Bytes(page, HubJsonContext.Default.ListTreeEntryJson));
    }

    private async Task PathsInfoAsync(HttpContext context)
    {
        if (await ResolveAsync(context) is not { } model)
        {
            return;
        }
        List<string> paths;
        bool expand;
        HttpRequest request = context.Request;
        if (request.ContentLength > MaxPathsInfoBody)
        {
            await HubErrors.BadRequest(context, $"The body is larger than {MaxPathsInfoBody} bytes.");
            return;
        }
        try
        {
            if (request.HasFormContentType)
            {
                // huggingface_hub posts a form: paths=a&paths=b&expand=True.
                IFormCollection form = await request.ReadFormAsync(context.RequestAborted);
                paths = [.. form["paths"].OfType<string>()];
                expand = IsTrue(form["expand"]);
            }
            else
            {
                PathsInfoRequestJson? body = await JsonSerializer.DeserializeAsync(request.Body, HubJsonContext.Default.PathsInfoRequestJson, context.RequestAborted);
                paths = body?.Paths ?? [];
                expand = body?.Expand ?? false;
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException or InvalidOperationException or BadHttpRequestException)
        {
            await HubErrors.BadRequest(context, "The body is not a paths-info request (JSON {\"paths\": [...]} or a form).");
            return;
        }
        var found = new List<TreeEntryJson>();
        foreach (string raw in paths.Distinct(StringComparer.Ordinal))
        {
            if (HubPaths.TryNormalize(raw, allowEmpty: false, out string path, out _)
                && (model.FindFile(path) is not null || model.Files.Any(f => f.Path.StartsWith(path + "/", StringComparison.Ordinal))))
            {
                found.Add(await EntryAsync(model, path, expand, context.RequestAborted));
            }
        }
        await HubResponses.WriteJsonAsync(context, JsonSerializer.SerializeToUtf8Bytes(found, HubJsonContext.Default.ListTreeEntryJson));
    }

    private async Task FileAsync(HttpContext context)
    {
        if (await ResolveAsync(context) is not { } model)
        {
            return;
        }
        if (!HubPaths.TryNormalize(context.GetRouteValue("path") as string, allowEmpty: false, out string path, out string problem))
        {
            await HubErrors.BadRequest(context, $"Invalid path: {problem}.");
            return;
        }
        if (model.FindFile(path) is not { } file)
        {
            await HubErrors.EntryNotFound(context, path);
            return;
        }
        string etag;
        try
        {
            etag = await _blobIds.ETagAsync(model, file, context.RequestAborted);
        }
        catch (Exception ex) when (ex is IOException)
        {
            logger.LogError("{Model}/{File}: {Message}", model.Id, file.Path, ex.Message);
            await HubErrors.Internal(context);
            return;
        }
        HttpRequest request = context.Request;
        HttpResponse response = context.Response;
        string quoted = $"\"{etag}\"";
        IHeaderDictionary headers = response.Headers;
        headers.ETag = quoted;
        headers["X-Repo-Commit"] = model.Commit;
        headers.AcceptRanges = "bytes";
        headers.LastModified = HubDates.Http(model.LastModified);
        if (file.IsLfs)
        {
            // What the hub sends with an LFS file's redirect, and what clients take the ETag and size from first.
            headers["X-Linked-Etag"] = quoted;
            headers["X-Linked-Size"] = file.Size.ToString(CultureInfo.InvariantCulture);
        }
        if (Matches(request.Headers.IfNoneMatch, quoted))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }
        ByteRange range = ByteRange.Parse(request.Headers.Range, file.Size);
        if (range.Kind != ByteRangeKind.Whole && request.Headers.IfRange is { Count: > 0 } ifRange
            && !string.Equals(ifRange.ToString(), quoted, StringComparison.Ordinal)
            && !string.Equals(ifRange.ToString(), headers.LastModified.ToString(), StringComparison.Ordinal))
        {
            // The client's copy is not this file: it gets the whole of it.
            range = ByteRange.Parse(null, file.Size);
        }
        if (range.Kind == ByteRangeKind.Unsatisfiable)
        {
            headers.ContentRange = $"bytes */{file.Size}";
            response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
            response.ContentLength = 0;
            return;
        }
        response.ContentType = "application/octet-stream";
        response.ContentLength = range.Length;
        if (range.Kind == ByteRangeKind.Partial)
        {
            response.StatusCode = StatusCodes.Status206PartialContent;
            headers.ContentRange = $"bytes {range.Start}-{range.End}/{file.Size}";
        }
        if (HttpMethods.IsHead(request.Method) || range.Length == 0)
        {
            return;
        }
        await StreamAsync(context, model, file, range);
    }

    /// <summary>
    /// Sends bytes [start, start + length) of the file, one buffer at a time, each write awaited (a slow client slows
    /// the reads). The first buffer is read before anything is sent, so a file whose first chunk cannot be read back
    /// gets a 500; a later failure cuts the connection, so the client sees a short body, never wrong bytes.
    /// </summary>
    private async Task StreamAsync(HttpContext context, HubModel model, HubFile file, ByteRange range)
    {
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        CancellationToken token = cancellation.Token;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(StreamBufferSize);
        IHubFileReader? reader = null;
        long offset = range.Start, end = range.Start + range.Length;
        bool started = false;
        try
        {
            reader = await store.OpenFileAsync(model, file, token);
            while (offset < end)
            {
                int want = (int)Math.Min(buffer.Length, end - offset);
                int n = await reader.ReadAsync(offset, buffer.AsMemory(0, want), token);
                if (n <= 0)
                {
                    throw new EndOfStreamException($"{model.Id}/{file.Path} ended at byte {offset} of {file.Size}.");
                }
                started = true;
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, n), token);
                HubResponses.Sent(context, n);
                offset += n;
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            context.Abort();
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            if (ex is FileNotFoundException && !started)
            {
                await HubErrors.EntryNotFound(context, file.Path);
                return;
            }
            if (ex is HubStoreRefusal refusal && !started && !context.Response.HasStarted)
            {
                logger.LogWarning("{Model}/{File}: {Status} {Message}", model.Id, file.Path, refusal.Status, refusal.Message);
                context.Response.Headers.Remove("Content-Range");
                context.Response.ContentLength = null;
                await HubErrors.Refusal(context, refusal);
                return;
            }
            // The log names model, file and object (a StoreDamageException's message does); the client gets none of it.
            logger.LogError("{Model}/{File}: {Message}", model.Id, file.Path, ex.Message);
            if (started || context.Response.HasStarted)
            {
                context.Abort();
            }
            else
            {
                context.Response.Headers.Remove("Content-Range");
                context.Response.ContentLength = null;
                await (ex is StoreLockLostException ? HubErrors.LockLost(context) : HubErrors.Internal(context));
            }
        }
        finally
        {
            if (reader is not null)
            {
                await reader.DisposeAsync();
            }
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The model a request names, if the caller may see it and the revision is one it has; otherwise the error is
    /// written and null returned.
    /// </summary>
    private async Task<HubModel?> ResolveAsync(HttpContext context)
    {
        string id = $"{context.GetRouteValue("org")}/{context.GetRouteValue("name")}";
        TokenGrant? grant = null;
        if (tokens is not null)
        {
            grant = tokens.Authenticate(context.Request.Headers.Authorization);
            if (grant is null || !grant.Covers(id))
            {
                await HubErrors.RepoNotFound(context, grant is not null);
                return null;
            }
        }
        string? revision = context.GetRouteValue("rev") is string rawRevision ? Uri.UnescapeDataString(rawRevision) : null;
        // The client's own token, for a mirror that forwards it upstream (never when the server checks tokens itself).
        string? bearer = tokens is null && context.Request.Headers.Authorization.ToString() is { } authorization
            && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization["Bearer ".Length..].Trim() : null;
        HubModel? model;
        try
        {
            model = await store.FindModelAsync(id, revision, bearer is { Length: > 0 } ? bearer : null, context.RequestAborted);
        }
        catch (HubStoreRefusal refusal)
        {
            await HubErrors.Refusal(context, refusal);
            return null;
        }
        catch (IOException ex)
        {
            logger.LogError("Listing the store: {Message}", ex.Message);
            await HubErrors.Unavailable(context);
            return null;
        }
        if (model is null)
        {
            await HubErrors.RepoNotFound(context, authenticated: tokens is null || grant is not null);
            return null;
        }
        return model;
    }

    private ModelInfoJson Info(HubModel model, List<SiblingJson>? siblings) => new()
    {
        InternalId = ObjectId(model.Id),
        Id = model.Id,
        ModelId = model.Id,
        Author = model.Author,
        Sha = model.Commit,
        LastModified = HubDates.Format(model.LastModified),
        CreatedAt = HubDates.Format(model.LastModified),
        UsedStorage = model.Files.Sum(f => f.Size),
        Siblings = siblings,
    };

    /// <summary>The paths a tree lists under <paramref name="folder"/>: files and folders, folders marked with a trailing slash.</summary>
    private static List<string> TreeEntries(HubModel model, string folder, bool recursive)
    {
        string prefix = folder.Length == 0 ? "" : folder + "/";
        var directories = new SortedSet<string>(StringComparer.Ordinal);
        var files = new List<string>();
        foreach (HubFile file in model.Files)
        {
            if (!file.Path.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }
            string rest = file.Path[prefix.Length..];
            int slash = rest.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0)
            {
                files.Add(file.Path);
                continue;
            }
            if (!recursive)
            {
                directories.Add(prefix + rest[..slash]);
                continue;
            }
            for (; slash >= 0; slash = rest.IndexOf('/', slash + 1))
            {
                directories.Add(prefix + rest[..slash]);
            }
            files.Add(file.Path);
        }
        // Folders first, then files, each in path order (as the hub lists them).
        return [.. directories.Select(d => d + "/"), .. files.OrderBy(f => f, StringComparer.Ordinal)];
    }

    private async Task<TreeEntryJson> EntryAsync(HubModel model, string path, bool expand, CancellationToken cancellationToken)
    {
        LastCommitJson? lastCommit = expand
            ? new LastCommitJson { Id = model.Commit, Title = $"Stored {model.Id}", Date = HubDates.Format(model.LastModified) }
            : null;
        string trimmed = path.TrimEnd('/');
        if (path.EndsWith('/') || model.FindFile(trimmed) is not { } file)
        {
            return new TreeEntryJson { Type = "directory", Oid = TreeId(model, trimmed), Size = 0, Path = trimmed, LastCommit = lastCommit };
        }
        return new TreeEntryJson
        {
            Type = "file",
            Oid = await _blobIds.GetAsync(model, file, cancellationToken),
            Size = file.Size,
            Path = file.Path,
            Lfs = file.IsLfs ? new TreeLfsJson { Oid = file.Sha256, Size = file.Size, PointerSize = PointerSize(file) } : null,
            LastCommit = lastCommit,
        };
    }

    private static long PointerSize(HubFile file) => Encoding.ASCII.GetByteCount(GitBlobIds.LfsPointer(file));

    /// <summary>A folder's id: stable for the model's commit and the folder's path.</summary>
    private static string TreeId(HubModel model, string folder) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes($"tree {model.Commit} {folder}")));

    /// <summary>The hub's <c>_id</c>: 24 hex digits, stable for the model's id.</summary>
    private static string ObjectId(string modelId) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(modelId)))[..24];

    private static bool IsTrue(StringValues value) =>
        value.ToString() is "1" || bool.TryParse(value.ToString(), out bool b) && b;

    /// <summary>Whether an <c>If-None-Match</c> header names <paramref name="quotedETag"/> (or <c>*</c>); weak tags compare by their value.</summary>
    internal static bool Matches(StringValues ifNoneMatch, string quotedETag)
    {
        foreach (string? value in ifNoneMatch)
        {
            foreach (string part in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                string tag = part.StartsWith("W/", StringComparison.Ordinal) ? part[2..] : part;
                if (tag == "*" || string.Equals(tag, quotedETag, StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }
        return false;
    }
}
