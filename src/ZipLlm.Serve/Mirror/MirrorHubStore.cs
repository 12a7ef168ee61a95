using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using ZipLlm.Domain;

namespace ZipLlm.Serve.Mirror;

/// <summary>
/// A pull-through mirror of an upstream hub over a store (<c>zipllm serve --upstream</c>): a model or revision the
/// store holds is served from it and upstream is not asked; a miss is resolved upstream to its commit and served
/// from a <see cref="MirrorFetch"/> while its files arrive, then stored compressed. At most
/// <see cref="MirrorOptions.MaxModelsInFlight"/> revisions and <see cref="MirrorOptions.MaxGigabytes"/> are fetched at
/// once (beyond that a miss waits for room, then is a 503 with <c>Retry-After</c>); with <see cref="MirrorOptions.RefreshMinutes"/>, upstream
/// <c>main</c> of every mirrored model is looked at with one HEAD that often and a new commit stored as a new revision.
/// </summary>
public sealed class MirrorHubStore : IHubStore, IAsyncDisposable
{
    /// <summary>Seconds a client is told to wait when the mirror is fetching as much as it may.</summary>
    public const int BusyRetryAfterSeconds = 30;

    private readonly ZipLlmHubStore _inner;
    private readonly ZipLlmStore _store;
    private readonly MirrorOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly MirrorCompressor _compressor;
    private readonly MirrorAccess _access;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Id, string Commit), MirrorFetch> _fetches = [];
    private readonly Dictionary<string, MirrorFetch> _mainFetches = new(StringComparer.Ordinal);
    // A stored revision answered under its model's id remembers the id it is stored under.
    private readonly ConditionalWeakTable<HubModel, string> _storedIds = [];
    private readonly ITimer? _refreshTimer;
    private long _bytesInFlight;
    private TaskCompletionSource _fetchEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task<int> _lastRefresh = Task.FromResult(0);

    /// <summary>Mirrors <see cref="MirrorOptions.Upstream"/> into <paramref name="store"/>, served through <paramref name="inner"/>.</summary>
    /// <param name="inner">The store's hub view.</param>
    /// <param name="store">The store fetched revisions are compressed into.</param>
    /// <param name="options">Upstream, limits, staging folder.</param>
    /// <param name="logger">Gets fetches, retries and failures.</param>
    /// <param name="time">The clock of refreshes and retries; the system's when null.</param>
    /// <param name="handler">Replaces the upstream's socket handler (tests).</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public MirrorHubStore(ZipLlmHubStore inner, ZipLlmStore store, MirrorOptions options, ILogger logger, TimeProvider? time = null, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        _inner = inner;
        _store = store;
        _options = options;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        Upstream = new UpstreamHub(options, _time, logger, handler);
        _compressor = new MirrorCompressor(store, logger);
        _access = new MirrorAccess(options, Upstream);
        if (options.RefreshMinutes > 0 && !options.Offline)
        {
            TimeSpan period = TimeSpan.FromMinutes(options.RefreshMinutes);
            _refreshTimer = _time.CreateTimer(_ => StartRefresh(), null, period, period);
        }
    }

    /// <summary>The upstream client (its request count tells what a download cost upstream).</summary>
    public UpstreamHub Upstream { get; }

    /// <summary>The refresh started last (by the timer or <see cref="RefreshAsync"/>), done or not.</summary>
    public Task<int> LastRefresh => Volatile.Read(ref _lastRefresh);

    /// <summary>Revisions being fetched now.</summary>
    public int FetchesInFlight
    {
        get
        {
            lock (_gate)
            {
                return _fetches.Count;
            }
        }
    }

    /// <summary>Resumes the fetches a stopped or killed mirror left in the staging folder (in the background).</summary>
    public void ResumeStaged()
    {
        string root = MirrorFetch.StagingRoot(_options);
        if (_options.Offline || !Directory.Exists(root))
        {
            return;
        }
        foreach (string commitFolder in Directory.EnumerateDirectories(root).SelectMany(Directory.EnumerateDirectories).SelectMany(Directory.EnumerateDirectories))
        {
            string commit = Path.GetFileName(commitFolder);
            string name = Path.GetFileName(Path.GetDirectoryName(commitFolder)!);
            string org = Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(commitFolder))!);
            string id = $"{org}/{name}";
            if (!UpstreamHub.IsCommit(commit) || !ModelId.TryParse(id, out _, out _) || !_options.Permits(id))
            {
                continue;
            }
            _ = Task.Run(async () =>
            {
                try
                {
                    IReadOnlyList<HubModel> stored = await StoredRevisionsAsync(id, _stopping.Token).ConfigureAwait(false);
                    if (stored.Any(m => m.Commit == commit))
                    {
                        Directory.Delete(commitFolder, recursive: true);
                        return;
                    }
                    _logger.LogInformation("Resuming the mirror of {Model} at {Commit}", id, commit);
                    UpstreamRevision revision = await Upstream.ResolveAsync(id, commit, _options.UpstreamToken, _stopping.Token).ConfigureAwait(false);
                    await StartAsync(revision, stored.Count == 0 ? id : MirrorRevisions.IdOf(id, commit), _options.UpstreamToken, asMain: false, _stopping.Token)
                        .ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or OperationCanceledException)
                {
                    _logger.LogWarning("{Model} at {Commit}: the staged fetch was not resumed: {Reason}", id, commit, ex.Message);
                }
            });
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<HubModel>> ListModelsAsync(CancellationToken cancellationToken) =>
        (await _inner.ListModelsAsync(cancellationToken).ConfigureAwait(false)).Where(m => !MirrorRevisions.IsRevisionId(m.Id)).ToList();

    /// <inheritdoc/>
    public ValueTask<HubModel?> FindModelAsync(string id, CancellationToken cancellationToken) => FindModelAsync(id, null, null, cancellationToken);

    /// <inheritdoc/>
    public async ValueTask<HubModel?> FindModelAsync(string id, string? revision, string? bearerToken, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        // Parsed before it names anything upstream or a staging folder: a hub id, never a path trick.
        if (!ModelId.TryParse(id, out _, out _) || MirrorRevisions.IsRevisionId(id))
        {
            return null;
        }
        bool wantsMain = revision is null or "main" or "HEAD";
        IReadOnlyList<HubModel> stored = await StoredRevisionsAsync(id, cancellationToken).ConfigureAwait(false);
        HubModel? hit = wantsMain ? stored.MaxBy(m => m.LastModified) : stored.FirstOrDefault(m => m.Commit == revision);
        if (hit is not null)
        {
            await _access.CheckAsync(id, bearerToken, cancellationToken).ConfigureAwait(false);
            return AsModel(id, hit);
        }
        MirrorFetch? active;
        lock (_gate)
        {
            active = wantsMain ? _mainFetches.GetValueOrDefault(id) : _fetches.GetValueOrDefault((id, revision!));
        }
        if (active is not null)
        {
            await _access.CheckAsync(id, bearerToken, cancellationToken).ConfigureAwait(false);
            return active.Model;
        }
        if (_options.Offline || !_options.Permits(id))
        {
            if (stored.Count > 0)
            {
                throw HubStoreRefusal.RevisionNotFound(revision!);
            }
            return null;
        }
        (string commit, string? token) = await ResolveUpstreamAsync(id, revision ?? "main", bearerToken, cancellationToken).ConfigureAwait(false);
        if (stored.FirstOrDefault(m => m.Commit == commit) is { } same)
        {
            return AsModel(id, same);
        }
        UpstreamRevision resolved = await Upstream.ListAsync(id, commit, token, cancellationToken).ConfigureAwait(false);
        if (resolved.Files.Count == 0)
        {
            throw UpstreamHub.Refuse(404, "EntryNotFound", $"{id} has no files upstream at {resolved.Commit}.");
        }
        return (await StartAsync(resolved, stored.Count == 0 ? id : MirrorRevisions.IdOf(id, resolved.Commit), token, wantsMain, cancellationToken)
            .ConfigureAwait(false)).Model;
    }

    /// <inheritdoc/>
    public ValueTask<IHubFileReader> OpenFileAsync(HubModel model, HubFile file, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(file);
        MirrorFetch? fetch;
        lock (_gate)
        {
            fetch = _fetches.GetValueOrDefault((model.Id, model.Commit));
        }
        if (fetch is not null && ReferenceEquals(fetch.Model, model))
        {
            return ValueTask.FromResult(fetch.Open(file.Path));
        }
        // A fetch that has just been stored reads from the store, where it now is.
        return _inner.OpenFileAsync(_storedIds.TryGetValue(model, out string? storedId) ? model with { Id = storedId } : model, file, cancellationToken);
    }

    /// <summary>
    /// Looks at upstream <c>main</c> of every model stored with an upstream commit (one HEAD each) and starts fetching
    /// each new commit, to be stored as a new revision; returns how many were started.
    /// </summary>
    public Task<int> RefreshAsync(CancellationToken cancellationToken = default)
    {
        Task<int> refresh = RefreshOnceAsync(cancellationToken);
        Volatile.Write(ref _lastRefresh, refresh);
        return refresh;
    }

    /// <summary>Completes when every fetch under way now has been stored or has failed.</summary>
    public Task WhenFetchesDoneAsync()
    {
        lock (_gate)
        {
            return Task.WhenAll(_fetches.Values.Select(f => f.Completion).Append(LastRefresh));
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_refreshTimer is not null)
        {
            await _refreshTimer.DisposeAsync().ConfigureAwait(false);
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        Task[] running;
        lock (_gate)
        {
            running = [.. _fetches.Values.Select(f => f.Completion)];
        }
        try
        {
            await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or TimeoutException or IOException or InvalidDataException)
        {
            // Cut short: what was staged stays for the next run to resume.
        }
        Upstream.Dispose();
        _stopping.Dispose();
    }

    private void StartRefresh() => _ = RefreshAsync(_stopping.Token);

    private async Task<int> RefreshOnceAsync(CancellationToken cancellationToken)
    {
        int started = 0;
        IReadOnlyList<StoredModel> all = await _store.ListModelsAsync(cancellationToken).ConfigureAwait(false);
        foreach (IGrouping<string, StoredModel> model in all.Where(m => !MirrorRevisions.IsRevisionId(m.Id) && UpstreamHub.IsCommit(m.Revision))
            .GroupBy(m => m.Id, StringComparer.Ordinal))
        {
            string id = model.Key;
            if (!_options.Permits(id))
            {
                continue;
            }
            try
            {
                IReadOnlyList<HubModel> stored = await StoredRevisionsAsync(id, cancellationToken).ConfigureAwait(false);
                HubModel newest = stored.MaxBy(m => m.LastModified)!;
                HubFile probe = newest.Files.FirstOrDefault(f => !f.IsLfs) ?? newest.Files[0];
                string commit = await Upstream.HeadCommitAsync(id, probe.Path, _options.UpstreamToken, cancellationToken).ConfigureAwait(false);
                if (stored.Any(m => m.Commit == commit))
                {
                    continue;
                }
                lock (_gate)
                {
                    if (_fetches.ContainsKey((id, commit)))
                    {
                        continue;
                    }
                }
                _logger.LogInformation("{Model}: upstream main moved to {Commit}; storing it as a new revision", id, commit);
                UpstreamRevision revision = await Upstream.ResolveAsync(id, commit, _options.UpstreamToken, cancellationToken).ConfigureAwait(false);
                await StartAsync(revision, MirrorRevisions.IdOf(id, commit), _options.UpstreamToken, asMain: false, cancellationToken).ConfigureAwait(false);
                started++;
            }
            catch (IOException ex)
            {
                _logger.LogWarning("{Model}: refresh from upstream failed: {Reason}", id, ex.Message);
            }
        }
        return started;
    }

    /// <summary>
    /// The commit <paramref name="revision"/> points at upstream, asked with the server's token, and with
    /// --forward-tokens with the client's when the server's is refused (the model is gated); with the token that worked.
    /// </summary>
    private async Task<(string Commit, string? Token)> ResolveUpstreamAsync(string id, string revision, string? bearerToken, CancellationToken cancellationToken)
    {
        try
        {
            return (await Upstream.ResolveCommitAsync(id, revision, _options.UpstreamToken, cancellationToken).ConfigureAwait(false), _options.UpstreamToken);
        }
        catch (HubStoreRefusal refusal) when (refusal.Status is 401 or 403 or 404 && _options.ForwardTokens && bearerToken is not null && bearerToken != _options.UpstreamToken)
        {
            string commit = await Upstream.ResolveCommitAsync(id, revision, bearerToken, cancellationToken).ConfigureAwait(false);
            _access.Accept(id, bearerToken);
            return (commit, bearerToken);
        }
    }

    /// <summary>
    /// Registers and starts the fetch of a revision, or returns the one under way. Beyond the limits it waits for a
    /// fetch to end, at most <see cref="MirrorOptions.AdmissionWait"/>, then refuses (503 with <c>Retry-After</c>).
    /// </summary>
    private async Task<MirrorFetch> StartAsync(UpstreamRevision revision, string storeAs, string? token, bool asMain, CancellationToken cancellationToken)
    {
        var fetch = new MirrorFetch(Upstream, _options, _logger, revision, storeAs, token, _time, _stopping.Token);
        if (fetch.Bytes > _options.MaxBytesInFlight)
        {
            throw UpstreamHub.Refuse(507, null, $"{revision.ModelId} is larger than this mirror may fetch at once (--mirror-max-gb {_options.MaxGigabytes}).");
        }
        long waitingSince = _time.GetTimestamp();
        while (true)
        {
            Task ended;
            lock (_gate)
            {
                if (_fetches.TryGetValue((revision.ModelId, revision.Commit), out MirrorFetch? existing))
                {
                    return existing;
                }
                if (_fetches.Count < _options.MaxModelsInFlight && _bytesInFlight + fetch.Bytes <= _options.MaxBytesInFlight)
                {
                    _fetches[(revision.ModelId, revision.Commit)] = fetch;
                    _bytesInFlight += fetch.Bytes;
                    if (asMain)
                    {
                        _mainFetches[revision.ModelId] = fetch;
                    }
                    break;
                }
                ended = _fetchEnded.Task;
            }
            TimeSpan left = _options.AdmissionWait - _time.GetElapsedTime(waitingSince);
            if (left <= TimeSpan.Zero)
            {
                throw UpstreamHub.Refuse(503, null, "The mirror is fetching as much as it may at once; retry later.", BusyRetryAfterSeconds);
            }
            try
            {
                await ended.WaitAsync(left, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Looked at once more above, then refused.
            }
        }
        _logger.LogInformation("Mirroring {Model} at {Commit}: {Files} files, {Bytes} bytes, as {StoredId}", revision.ModelId, revision.Commit,
            revision.Files.Count, fetch.Bytes, storeAs);
        fetch.Start(f => _compressor.StoreAsync(f.Folder, f.StoreAs, f.Revision.Commit, _stopping.Token), Finished);
        return fetch;
    }

    private void Finished(MirrorFetch fetch, Exception? failure)
    {
        if (failure is null)
        {
            // Read again before the fetch goes: the next request finds the model stored.
            _inner.Invalidate();
        }
        lock (_gate)
        {
            _fetches.Remove((fetch.Revision.ModelId, fetch.Revision.Commit));
            _bytesInFlight -= fetch.Bytes;
            if (_mainFetches.GetValueOrDefault(fetch.Revision.ModelId) == fetch)
            {
                _mainFetches.Remove(fetch.Revision.ModelId);
            }
            // Wakes the misses waiting for room.
            _fetchEnded.TrySetResult();
            _fetchEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>The stored revisions of <paramref name="id"/>: the model's own id and its revision ids.</summary>
    private async Task<IReadOnlyList<HubModel>> StoredRevisionsAsync(string id, CancellationToken cancellationToken) =>
        (await _inner.ListModelsAsync(cancellationToken).ConfigureAwait(false)).Where(m => MirrorRevisions.IsRevisionOf(m.Id, id)).ToList();

    private HubModel AsModel(string id, HubModel stored)
    {
        if (stored.Id == id)
        {
            return stored;
        }
        HubModel shown = stored with { Id = id };
        _storedIds.AddOrUpdate(shown, stored.Id);
        return shown;
    }
}
