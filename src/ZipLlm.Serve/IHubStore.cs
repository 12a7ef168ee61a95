namespace ZipLlm.Serve;

/// <summary>
/// What the hub protocol needs of a store, and no more: the seam between the HTTP layer and the engine. The server
/// maps every route onto these three calls; <see cref="ZipLlmHubStore"/> implements them over <see cref="ZipLlmStore"/>,
/// tests over a fake.
/// </summary>
public interface IHubStore
{
    /// <summary>Every model the store holds now, ordered by id.</summary>
    /// <exception cref="IOException">The store cannot be read.</exception>
    ValueTask<IReadOnlyList<HubModel>> ListModelsAsync(CancellationToken cancellationToken);

    /// <summary>The model <paramref name="id"/> (<c>org/name</c>, compared exactly), or null when the store does not hold it.</summary>
    /// <exception cref="IOException">The store cannot be read.</exception>
    ValueTask<HubModel?> FindModelAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// The model <paramref name="id"/> at <paramref name="revision"/> (<c>main</c>, <c>HEAD</c> or null for the newest,
    /// else a commit or a branch), as a request asks for it; null when the store does not hold the model. By default
    /// <see cref="FindModelAsync(string, CancellationToken)"/>, with the revision checked against the one commit it has.
    /// </summary>
    /// <param name="id">The model, <c>org/name</c>.</param>
    /// <param name="revision">The revision the request names, unescaped.</param>
    /// <param name="bearerToken">The request's own <c>Authorization: Bearer</c> token, for a store that asks a source for it (a mirror's upstream).</param>
    /// <param name="cancellationToken">Stops the lookup.</param>
    /// <exception cref="HubStoreRefusal">The answer is an error of the hub's own: a revision it does not have, or what an upstream refused.</exception>
    /// <exception cref="IOException">The store cannot be read.</exception>
    async ValueTask<HubModel?> FindModelAsync(string id, string? revision, string? bearerToken, CancellationToken cancellationToken)
    {
        HubModel? model = await FindModelAsync(id, cancellationToken).ConfigureAwait(false);
        if (model is not null && revision is not (null or "main" or "HEAD") && !string.Equals(revision, model.Commit, StringComparison.Ordinal))
        {
            throw HubStoreRefusal.RevisionNotFound(revision);
        }
        return model;
    }

    /// <summary>Opens <paramref name="file"/> of <paramref name="model"/> for reading at any offset.</summary>
    /// <exception cref="FileNotFoundException">The model or the file is no longer stored.</exception>
    /// <exception cref="IOException">Its stored bytes cannot be read back (<see cref="StoreDamageException"/> among them).</exception>
    ValueTask<IHubFileReader> OpenFileAsync(HubModel model, HubFile file, CancellationToken cancellationToken);
}

/// <summary>Reads one stored file at any offset; one reader serves one response, one read at a time.</summary>
public interface IHubFileReader : IAsyncDisposable
{
    /// <summary>
    /// Reads from <paramref name="offset"/> into <paramref name="destination"/>; returns how many bytes were read, at
    /// least one unless the offset is at or past the file's end (0).
    /// </summary>
    /// <exception cref="IOException">A chunk fails its checksum or cannot be read: never wrong bytes.</exception>
    ValueTask<int> ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken);
}

/// <summary>A stored model as the hub shows it.</summary>
/// <param name="Id">Its id, <c>org/name</c>.</param>
/// <param name="Commit">Its commit: the recorded hub revision, else a stable id derived from its files (40 lowercase hex digits).</param>
/// <param name="LastModified">When it was stored.</param>
/// <param name="Files">Its files, ordered by path.</param>
public sealed record HubModel(string Id, string Commit, DateTimeOffset LastModified, IReadOnlyList<HubFile> Files)
{
    /// <summary>The organisation: what comes before the <c>/</c> of <see cref="Id"/>.</summary>
    public string Author => Id[..Id.IndexOf('/', StringComparison.Ordinal)];

    /// <summary>The file at <paramref name="path"/> exactly, or null.</summary>
    public HubFile? FindFile(string path)
    {
        foreach (HubFile file in Files)
        {
            if (string.Equals(file.Path, path, StringComparison.Ordinal))
            {
                return file;
            }
        }
        return null;
    }
}

/// <summary>A file of a stored model.</summary>
/// <param name="Path">Its path in the model folder, <c>/</c>-separated.</param>
/// <param name="Size">Its length in bytes.</param>
/// <param name="Sha256">The lowercase hex SHA-256 of its bytes.</param>
/// <param name="IsSafetensors">Whether it is a safetensors file.</param>
public sealed record HubFile(string Path, long Size, string Sha256, bool IsSafetensors)
{
    /// <summary>
    /// Its git blob id when already known (a mirrored file not stored yet, whose <see cref="Sha256"/> may then be empty
    /// for a file kept in git); null when it is found from the bytes.
    /// </summary>
    public string? GitOid { get; init; }

    /// <summary>Files from this size up are LFS files on the hub whatever their name (its 10 MB rule).</summary>
    public const long LfsThreshold = 10L * 1000 * 1000;

    /// <summary>
    /// Whether the hub would keep it in LFS: safetensors files and every file of 10 MB or more. The hub names an LFS
    /// file by its SHA-256 (ETag, <c>lfs.oid</c>), any other by its git blob id.
    /// </summary>
    public bool IsLfs => IsSafetensors || Size >= LfsThreshold;
}

/// <summary>
/// An answer of the hub's own kind to a request the store cannot serve: a status, the hub's <c>X-Error-Code</c> and
/// message, and for a busy or rate-limited source the seconds to wait (<c>Retry-After</c>). The server writes it as it is.
/// </summary>
public sealed class HubStoreRefusal : IOException
{
    /// <summary>Creates the refusal.</summary>
    /// <param name="status">The HTTP status to answer.</param>
    /// <param name="errorCode">The hub's <c>X-Error-Code</c> (<c>RepoNotFound</c>, <c>GatedRepo</c> ...), or null.</param>
    /// <param name="message">One line for the client (and the log).</param>
    /// <param name="retryAfterSeconds">Seconds the client should wait before asking again, or null.</param>
    public HubStoreRefusal(int status, string? errorCode, string message, int? retryAfterSeconds = null)
        : base(message)
    {
        Status = status;
        ErrorCode = errorCode;
        RetryAfterSeconds = retryAfterSeconds;
    }

    /// <summary>The HTTP status to answer.</summary>
    public int Status { get; }

    /// <summary>The hub's <c>X-Error-Code</c>, or null.</summary>
    public string? ErrorCode { get; }

    /// <summary>Seconds to wait before asking again (<c>Retry-After</c>), or null.</summary>
    public int? RetryAfterSeconds { get; }

    /// <summary>The hub's answer to a revision a model does not have.</summary>
    public static HubStoreRefusal RevisionNotFound(string revision) => new(404, "RevisionNotFound", $"Invalid rev id: {revision}");
}
