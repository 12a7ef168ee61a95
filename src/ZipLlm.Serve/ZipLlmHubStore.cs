using System.Security.Cryptography;
using System.Text;

namespace ZipLlm.Serve;

/// <summary>
/// <see cref="IHubStore"/> over the public library API, <see cref="ZipLlmStore"/>: the one place the server meets the
/// engine. The listing is read at most once per <see cref="ListingLifetime"/> (<see cref="ZipLlmStore.ListModels"/>
/// reads every manifest), so a model removed or stored while the server runs disappears or appears within it.
/// </summary>
public sealed class ZipLlmHubStore : IHubStore, IDisposable
{
    /// <summary>How long a listing is served before the manifests are read again, by default.</summary>
    public static readonly TimeSpan DefaultListingLifetime = TimeSpan.FromSeconds(2);

    private readonly ZipLlmStore _store;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private Listing? _listing;

    /// <summary>
    /// Serves <paramref name="store"/>, which the caller keeps owning: its reads decode on the store's workers through its
    /// one cache of decoded chunks (<see cref="ZipLlmStoreOptions.CacheMegabytes"/>, <c>--cache-mb</c>).
    /// </summary>
    /// <param name="store">The opened store.</param>
    /// <param name="time">The clock the listing's lifetime is measured on; the system's when null.</param>
    /// <param name="listingLifetime">How long a listing lasts; <see cref="DefaultListingLifetime"/> when null.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="listingLifetime"/> is negative.</exception>
    public ZipLlmHubStore(ZipLlmStore store, TimeProvider? time = null, TimeSpan? listingLifetime = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ListingLifetime = listingLifetime ?? DefaultListingLifetime;
        ArgumentOutOfRangeException.ThrowIfLessThan(ListingLifetime, TimeSpan.Zero, nameof(listingLifetime));
        _store = store;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>How long a listing is served before the manifests are read again.</summary>
    public TimeSpan ListingLifetime { get; }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<HubModel>> ListModelsAsync(CancellationToken cancellationToken) =>
        (await CurrentAsync(cancellationToken).ConfigureAwait(false)).Models;

    /// <inheritdoc/>
    public async ValueTask<HubModel?> FindModelAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        return (await CurrentAsync(cancellationToken).ConfigureAwait(false)).ById.GetValueOrDefault(id);
    }

    /// <inheritdoc/>
    public ValueTask<IHubFileReader> OpenFileAsync(HubModel model, HubFile file, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(file);
        cancellationToken.ThrowIfCancellationRequested();
        // Nothing to open: each read finds the file in the manifest the store holds under its read lock.
        return ValueTask.FromResult<IHubFileReader>(new Reader(_store, model.Id, file.Path));
    }

    /// <summary>
    /// The commit of a model stored without a hub revision: the SHA-1 of its files' paths, sizes and SHA-256s, in path
    /// order. The same on every restart and every server over the same store; another set of files, another commit.
    /// </summary>
    public static string DerivedCommit(IEnumerable<HubFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        foreach (HubFile file in files.OrderBy(f => f.Path, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes($"{file.Path}\0{file.Size}\0{file.Sha256}\n"));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The model as the hub shows it: files by path, the recorded revision when it is a commit id, else one derived from the files.</summary>
    public static HubModel ToHub(StoredModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        List<HubFile> files = model.Files
            .Select(f => new HubFile(f.Path, f.Length, f.Sha256, f.IsSafetensors))
            .OrderBy(f => f.Path, StringComparer.Ordinal)
            .ToList();
        string commit = model.Revision is { Length: 40 } revision && revision.All(char.IsAsciiHexDigitLower) ? revision : DerivedCommit(files);
        return new HubModel(model.Id, commit, model.StoredAt, files);
    }

    /// <summary>Drops the listing read last, so the next request reads the manifests again (a model was just stored).</summary>
    public void Invalidate() => Volatile.Write(ref _listing, null);

    /// <inheritdoc/>
    public void Dispose() => _refresh.Dispose();

    private async ValueTask<Listing> CurrentAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _listing) is { } fresh && !IsStale(fresh))
        {
            return fresh;
        }
        // One reader of the manifests at a time; the others take what it read.
        await _refresh.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _listing) is { } other && !IsStale(other))
            {
                return other;
            }
            long at = _time.GetTimestamp();
            List<HubModel> models = (await _store.ListModelsAsync(cancellationToken).ConfigureAwait(false)).Select(ToHub).ToList();
            var listing = new Listing(at, models, models.ToDictionary(m => m.Id, StringComparer.Ordinal));
            Volatile.Write(ref _listing, listing);
            return listing;
        }
        finally
        {
            _refresh.Release();
        }
    }

    private bool IsStale(Listing listing) => _time.GetElapsedTime(listing.At) >= ListingLifetime;

    private sealed record Listing(long At, IReadOnlyList<HubModel> Models, Dictionary<string, HubModel> ById);

    /// <summary>
    /// A stored file read at the offsets asked for, by <see cref="ZipLlmStore.ReadFileAsync"/>: the chunks a range covers
    /// decode on the store's workers, through its shared cache, and the request's thread only awaits them.
    /// </summary>
    private sealed class Reader(ZipLlmStore store, string modelId, string path) : IHubFileReader
    {
        public async ValueTask<int> ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
        {
            try
            {
                return await store.ReadFileAsync(modelId, path, offset, destination, cancellationToken).ConfigureAwait(false);
            }
            catch (ModelNotFoundException ex)
            {
                // Removed since the listing was read.
                throw new FileNotFoundException(ex.Message, path, ex);
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
