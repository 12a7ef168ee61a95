using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Hub;

/// <summary>
/// Downloads one listed file into a folder: streams it into <c>NAME.part</c> (resuming what an earlier
/// run left there, with <c>Range</c>), never past the listed size, retries transient failures, checks
/// size and hash (<see cref="HubFileCheck"/>), and only then renames it to its final name.
/// </summary>
internal sealed class HubFileDownload(HttpClient http, HubClientOptions options, HubRetryPolicy retry, ILogger logger)
{
    /// <summary>Bytes read from the network and written to the part file at a time.</summary>
    public const int CopyBufferSize = 1 << 20;

    /// <summary>
    /// Downloads <paramref name="file"/> at <paramref name="commit"/> into <paramref name="folder"/> (its sub-folders
    /// made as needed); returns the bytes received, or -1 when it was already complete.
    /// </summary>
    /// <param name="modelId">The model.</param>
    /// <param name="commit">The commit to download the file at.</param>
    /// <param name="file">The file, as listed at that commit.</param>
    /// <param name="folder">The model folder.</param>
    /// <param name="trustExisting">
    /// Whether a file already in place at the listed size is that commit's (the folder holds that commit): then it is
    /// kept as it is; otherwise it is hashed first, and downloaded again unless it matches.
    /// </param>
    /// <param name="progress">Receives the file's bytes as they arrive.</param>
    /// <param name="cancellationToken">Stops the download; the part file stays for the next run to resume.</param>
    /// <exception cref="HubException">The hub refused, kept failing, the file failed its checks, or it could not be written.</exception>
    public async Task<long> DownloadAsync(
        ModelId modelId, string commit, HubFile file, string folder, bool trustExisting, IProgress<HubDownloadProgress>? progress, CancellationToken cancellationToken)
    {
        string finalPath = System.IO.Path.Combine(folder, file.Path);
        string partPath = finalPath + HubClient.PartialSuffix;
        var existing = new FileInfo(finalPath);
        // A finished file is only ever renamed into place after verification, so its size is proof enough for a folder
        // known to hold this commit; a folder of another commit (or of unknown provenance) may hold older bytes of that size.
        if (existing.Exists && existing.Length == file.Size
            && (trustExisting || await HubFileCheck.MatchesAsync(file, finalPath, cancellationToken).ConfigureAwait(false)))
        {
            logger.LogDebug("{Model}: {File} already complete", modelId, file.Path);
            progress?.Report(new HubDownloadProgress(modelId, file.Path, file.Size, file.Size, Completed: true));
            return -1;
        }
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(finalPath)!);
        }
        catch (IOException ex)
        {
            throw HubRequests.LocalError(finalPath, ex);
        }

        long received = 0;
        Uri url = HubRequests.ResolveUrl(options, modelId, commit, file.Path);
        var operation = new HubOperation($"{modelId}: {file.Path}");
        await retry.RunAsync(operation, async ct =>
        {
            long have = File.Exists(partPath) ? new FileInfo(partPath).Length : 0;
            if (have > file.Size)
            {
                File.Delete(partPath);
                have = 0;
            }
            if (have < file.Size || file.Size == 0)
            {
                received += await FetchIntoPartAsync(operation, modelId, file, url, partPath, have, progress, ct).ConfigureAwait(false);
            }
            return true;
        }, cancellationToken).ConfigureAwait(false);

        await HubFileCheck.VerifyAsync(modelId, file, partPath, cancellationToken).ConfigureAwait(false);
        try
        {
            File.Move(partPath, finalPath, overwrite: true);
        }
        catch (IOException ex)
        {
            throw HubRequests.LocalError(finalPath, ex);
        }
        logger.LogDebug("{Model}: {File} downloaded and verified ({Bytes} bytes)", modelId, file.Path, file.Size);
        progress?.Report(new HubDownloadProgress(modelId, file.Path, file.Size, file.Size, Completed: true));
        return received;
    }

    /// <summary>One attempt: requests the missing range and appends it to the part file.</summary>
    private async Task<long> FetchIntoPartAsync(
        HubOperation operation, ModelId modelId, HubFile file, Uri url, string partPath, long have, IProgress<HubDownloadProgress>? progress, CancellationToken cancellationToken)
    {
        RangeHeaderValue? range = have > 0 ? new RangeHeaderValue(have, null) : null;
        using HttpResponseMessage response = await HubRequests.GetAsync(http, options, url, range, operation, modelId, file.Path, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            // The part no longer matches what the server holds: start over on the next attempt.
            File.Delete(partPath);
            throw new HubTransientException($"the server refused to resume at byte {have}", null);
        }
        if (response.StatusCode == HttpStatusCode.PartialContent)
        {
            long? start = response.Content.Headers.ContentRange?.From;
            if (start != have)
            {
                File.Delete(partPath);
                throw new HubTransientException($"the server resumed at byte {start?.ToString() ?? "?"} instead of {have}", null);
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
            throw HubRequests.LocalError(partPath, ex);
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
                            throw HubRequests.LocalError(partPath, ex);
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
                    throw HubRequests.LocalError(partPath, ex);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (have + received < file.Size)
        {
            throw new HubTransientException($"the transfer ended at byte {have + received} of {file.Size}", null);
        }
        return received;
    }

    private async Task<int> ReadWithTimeoutAsync(Stream body, byte[] buffer, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(options.ReadTimeout);
        try
        {
            return await body.ReadAsync(buffer, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HubTransientException($"no data for {options.ReadTimeout.TotalSeconds:F0} s", ex);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            throw new HubTransientException($"the connection failed: {ex.Message}", ex);
        }
    }
}
