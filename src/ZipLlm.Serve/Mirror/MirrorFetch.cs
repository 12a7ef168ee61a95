using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace ZipLlm.Serve.Mirror;

/// <summary>
/// One upstream revision being mirrored: its files staged in <c>staging/ORG/NAME/COMMIT/</c> (so a restarted mirror
/// finds and resumes it), each fetched once whether a client asked for it or the background reached it; when every
/// file has arrived and matched its hash, the folder is compressed into the store (lineage choosing its base) and
/// then deleted. Until then it answers for the revision as a <see cref="HubModel"/> whose reads wait for bytes.
/// </summary>
internal sealed class MirrorFetch
{
    private readonly Dictionary<string, StagedFile> _files;
    private readonly ILogger _logger;
    private Task? _run;

    public MirrorFetch(UpstreamHub upstream, MirrorOptions options, ILogger logger, UpstreamRevision revision, string storeAs, string? token,
        TimeProvider time, CancellationToken stopping)
    {
        _logger = logger;
        Revision = revision;
        StoreAs = storeAs;
        Token = token;
        Folder = FolderOf(options, revision.ModelId, revision.Commit);
        _files = revision.Files.ToDictionary(
            f => f.Path,
            f => new StagedFile(upstream, options, logger, revision.ModelId, revision.Commit, f, Folder, () => Token, stopping),
            StringComparer.Ordinal);
        Model = new HubModel(revision.ModelId, revision.Commit, time.GetUtcNow(), revision.Files
            .OrderBy(f => f.Path, StringComparer.Ordinal)
            .Select(f => new HubFile(f.Path, f.Size, f.Sha256 ?? "", f.Path.EndsWith(".safetensors", StringComparison.Ordinal)) { GitOid = f.GitOid })
            .ToList());
        Bytes = revision.Files.Sum(f => f.Size);
    }

    public UpstreamRevision Revision { get; }

    /// <summary>The id the revision is stored under: the model's, or for a second revision of a stored model its revision id (<see cref="MirrorRevisions"/>).</summary>
    public string StoreAs { get; }

    /// <summary>The token upstream accepted for it (a forwarded client's, for a gated model), else the server's.</summary>
    public string? Token { get; }

    public string Folder { get; }

    public HubModel Model { get; }

    /// <summary>The revision's bytes: what it holds of the budget while it is fetched.</summary>
    public long Bytes { get; }

    /// <summary>Completes when the revision is stored (or has failed).</summary>
    public Task Completion => _run ?? Task.CompletedTask;

    /// <summary>The staging folder of a revision.</summary>
    public static string FolderOf(MirrorOptions options, string modelId, string commit) =>
        Path.Combine(StagingRoot(options), modelId.Replace('/', Path.DirectorySeparatorChar), commit);

    /// <summary>Where every revision is staged.</summary>
    public static string StagingRoot(MirrorOptions options) => Path.Combine(options.StagingFolder, "staging");

    /// <summary>
    /// Starts fetching every file in the background, one at a time, then <paramref name="store"/> compresses the folder,
    /// then <paramref name="finished"/> is told (stored, or the failure) and the folder is deleted once stored.
    /// </summary>
    public void Start(Func<MirrorFetch, Task> store, Action<MirrorFetch, Exception?> finished)
    {
        _run = Task.Run(async () =>
        {
            Exception? failure = null;
            try
            {
                foreach (StagedFile file in _files.Values.OrderBy(f => f.Info.Path, StringComparer.Ordinal))
                {
                    await file.EnsureStartedAsync().ConfigureAwait(false);
                }
                await store(this).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failure = ex;
                if (ex is not OperationCanceledException)
                {
                    _logger.LogError("{Model}@{Commit}: not mirrored: {Reason}", Revision.ModelId, Revision.Commit, ex.Message);
                }
            }
            finished(this, failure);
            if (failure is null)
            {
                DeleteFolder();
            }
        });
    }

    /// <summary>A reader of one file: its download starts now if it has not.</summary>
    public IHubFileReader Open(string path)
    {
        StagedFile file = _files[path];
        _ = file.EnsureStartedAsync().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        return new Reader(file, file.OpenRead());
    }

    private void DeleteFolder()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
            // The model's and org's folders, once empty.
            for (string? parent = Path.GetDirectoryName(Folder); parent is not null && parent.Length > 0; parent = Path.GetDirectoryName(parent))
            {
                if (parent.Length <= StagingRootLength || Directory.EnumerateFileSystemEntries(parent).Any())
                {
                    break;
                }
                Directory.Delete(parent);
            }
        }
        catch (IOException ex)
        {
            _logger.LogWarning("{Folder}: staging folder not removed: {Reason}", Folder, ex.Message);
        }
    }

    private int StagingRootLength => Folder.Length - Revision.ModelId.Length - Revision.Commit.Length - 2;

    private sealed class Reader(StagedFile file, SafeFileHandle handle) : IHubFileReader
    {
        public ValueTask<int> ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken) =>
            file.ReadAsync(handle, offset, destination, cancellationToken);

        public ValueTask DisposeAsync()
        {
            handle.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
