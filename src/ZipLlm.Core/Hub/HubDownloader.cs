using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Hub;

/// <summary>
/// Downloads a model's folder: resolves the revision to its commit, lists the repository at that commit (every
/// folder), keeps the files the selection takes (<see cref="HubClientOptions.Files"/>), and fetches them several at a
/// time (<see cref="HubClientOptions.MaxConcurrentDownloads"/>), largest first; one failure stops the rest.
/// </summary>
internal sealed class HubDownloader(HubClientOptions options, HubListing listing, HubFileDownload files)
{
    /// <summary>
    /// Downloads the selected files of <paramref name="modelId"/> at <paramref name="revision"/> into
    /// <paramref name="folder"/>: files already complete are skipped, partial ones resumed.
    /// </summary>
    /// <param name="modelId">The model.</param>
    /// <param name="folder">The model folder.</param>
    /// <param name="revision">Branch, tag or commit (<see cref="HubClientOptions.Revision"/> when null).</param>
    /// <param name="folderCommit">The commit the folder already holds, when known: its complete files are then kept without hashing them again.</param>
    /// <param name="progress">Receives the model's files and bytes done so far.</param>
    /// <param name="cancellationToken">Stops the downloads; part files stay for the next run to resume.</param>
    /// <exception cref="HubException">
    /// The model or revision is unknown or gated, the selection takes no safetensors file, a file fails verification,
    /// the disk is full, or the hub keeps failing after every retry.
    /// </exception>
    public async Task<HubDownloadSummary> DownloadModelAsync(
        ModelId modelId, string folder, string? revision, string? folderCommit, IProgress<HubTransferProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        revision ??= options.Revision;
        if (options.Offline)
        {
            throw new HubException(HubErrorKind.Network, $"{modelId}: {HubClientOptions.OfflineVariable} is set: no request may reach the hub.");
        }
        string commit = await listing.ResolveCommitAsync(modelId, revision, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<HubFile> listed = await listing.ListFilesAsync(modelId, commit, cancellationToken).ConfigureAwait(false);
        var wanted = options.Files.Select(listed).OrderByDescending(f => f.Size).ThenBy(f => f.Path, StringComparer.Ordinal).ToList();
        if (!wanted.Any(f => HubFileSelection.IsSafetensors(f.Path)))
        {
            throw new HubException(HubErrorKind.NotFound, listed.Any(f => HubFileSelection.IsSafetensors(f.Path))
                ? $"{modelId}: the file patterns ({options.Files}) take no .safetensors file of the repository."
                : $"{modelId}: the repository has no .safetensors file at {revision}.");
        }
        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (IOException ex)
        {
            throw HubRequests.LocalError(folder, ex);
        }

        bool trustExisting = folderCommit is not null && string.Equals(folderCommit, commit, StringComparison.OrdinalIgnoreCase);
        var tally = new Tally(modelId, wanted, progress);
        using var failFast = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var gate = new SemaphoreSlim(options.MaxConcurrentDownloads);
        int downloaded = 0, skipped = 0;
        long bytes = 0;
        var tasks = wanted.Select(async (file, index) =>
        {
            await gate.WaitAsync(failFast.Token).ConfigureAwait(false);
            try
            {
                long received = await files.DownloadAsync(modelId, commit, file, folder, trustExisting, tally.For(index), failFast.Token).ConfigureAwait(false);
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
        return new HubDownloadSummary(modelId, folder, downloaded, skipped, bytes, commit);
    }

    /// <summary>Adds up the files' progress into the model's, for the one progress line.</summary>
    private sealed class Tally(ModelId modelId, IReadOnlyList<HubFile> files, IProgress<HubTransferProgress>? progress)
    {
        private readonly Lock _gate = new();
        private readonly long[] _done = new long[files.Count];
        private readonly bool[] _finished = new bool[files.Count];
        private readonly long _total = files.Sum(f => f.Size);
        private long _sum;
        private int _filesDone;

        /// <summary>The per-file progress of file <paramref name="index"/>; null when nobody listens.</summary>
        public IProgress<HubDownloadProgress>? For(int index) => progress is null ? null : new FileProgress(this, index);

        private void Report(int index, HubDownloadProgress value)
        {
            // Reported under the lock, so the reports arrive in order and the counts never go back.
            lock (_gate)
            {
                _sum += value.BytesDone - _done[index];
                _done[index] = value.BytesDone;
                if (value.Completed && !_finished[index])
                {
                    _finished[index] = true;
                    _filesDone++;
                }
                progress!.Report(new HubTransferProgress(modelId, _filesDone, files.Count, _sum, _total));
            }
        }

        private sealed class FileProgress(Tally tally, int index) : IProgress<HubDownloadProgress>
        {
            public void Report(HubDownloadProgress value) => tally.Report(index, value);
        }
    }
}
