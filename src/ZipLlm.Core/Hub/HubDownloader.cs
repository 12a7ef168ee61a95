using ZipLlm.Config;

namespace ZipLlm.Hub;

/// <summary>
/// Downloads a model's folder: lists the repository, keeps the files a model folder needs
/// (<see cref="IsWanted"/>), and fetches them several at a time, largest first; one failure stops the rest.
/// </summary>
internal sealed class HubDownloader(HubClientOptions options, HubListing listing, HubFileDownload files)
{
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

    /// <summary>
    /// Downloads the wanted files of <paramref name="modelId"/> into <paramref name="folder"/>: files
    /// already complete are skipped, partial ones resumed.
    /// </summary>
    /// <exception cref="HubException">
    /// The model is unknown or gated, lists no safetensors file, a file fails verification, the disk
    /// is full, or the hub keeps failing after every retry.
    /// </exception>
    public async Task<HubDownloadSummary> DownloadModelAsync(
        ModelId modelId, string folder, IProgress<HubDownloadProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        IReadOnlyList<HubFile> listed = await listing.ListFilesAsync(modelId, cancellationToken).ConfigureAwait(false);
        var wanted = listed.Where(f => IsWanted(f.Path)).OrderByDescending(f => f.Size).ToList();
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
            throw HubRequests.LocalError(folder, ex);
        }

        using var failFast = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var gate = new SemaphoreSlim(options.MaxConcurrentDownloads);
        int downloaded = 0, skipped = 0;
        long bytes = 0;
        var tasks = wanted.Select(async file =>
        {
            await gate.WaitAsync(failFast.Token).ConfigureAwait(false);
            try
            {
                long received = await files.DownloadAsync(modelId, file, folder, progress, failFast.Token).ConfigureAwait(false);
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

    /// <summary>A plain file name: no folders, no parent references, nothing hidden.</summary>
    private static bool IsSafeFileName(string path) =>
        path.Length > 0 && path.Length <= 255
        && path.IndexOfAny(['/', '\\', ':', '\0']) < 0
        && path[0] != '.'
        && path.EndsWith(HubClient.PartialSuffix, StringComparison.Ordinal) is false;
}
