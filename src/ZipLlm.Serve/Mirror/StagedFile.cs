using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace ZipLlm.Serve.Mirror;

/// <summary>
/// One file of a revision being mirrored: downloaded once into <c>PATH.part</c> in the staging folder (resumed from
/// what a killed run left there, with <c>Range</c>), hashed as it arrives, and renamed to <c>PATH</c> only once its
/// hash matches the hub's (SHA-256 for an LFS file, the git blob id for the rest). Readers are served from the bytes
/// that have arrived, but the last byte of the file only once it is verified: a response that reaches the end of a
/// file that fails its check is cut before it completes, never finished with wrong bytes.
/// </summary>
internal sealed class StagedFile
{
    /// <summary>Bytes read from upstream and written at a time.</summary>
    public const int CopyBufferSize = 1 << 20;

    /// <summary>Suffix of a file still arriving.</summary>
    public const string PartSuffix = ".part";

    private readonly UpstreamHub _upstream;
    private readonly MirrorOptions _options;
    private readonly ILogger _logger;
    private readonly string _modelId, _commit;
    private readonly Func<string?> _token;
    private readonly Lazy<Task> _download;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _arrived;
    private volatile bool _verified;
    private volatile Exception? _failure;

    public StagedFile(UpstreamHub upstream, MirrorOptions options, ILogger logger, string modelId, string commit, UpstreamFile file, string folder,
        Func<string?> token, CancellationToken stopping)
    {
        _upstream = upstream;
        _options = options;
        _logger = logger;
        _modelId = modelId;
        _commit = commit;
        _token = token;
        Info = file;
        FinalPath = Path.Combine(folder, file.Path);
        PartPath = FinalPath + PartSuffix;
        // A file renamed into place was verified before it was: a restarted fetch keeps it.
        if (File.Exists(FinalPath) && new FileInfo(FinalPath).Length == file.Size)
        {
            _verified = true;
            _arrived = file.Size;
        }
        _download = new Lazy<Task>(() =>
        {
            // The part file exists before any reader opens it, and only the download ever creates it.
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(PartPath)!);
                new FileStream(PartPath, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete).Dispose();
            }
            catch (IOException ex)
            {
                _failure = ex;
                return Task.FromException(ex);
            }
            return Task.Run(() => DownloadAsync(stopping), CancellationToken.None);
        });
    }

    public UpstreamFile Info { get; }

    public string FinalPath { get; }

    public string PartPath { get; }

    public bool Verified => _verified;

    /// <summary>Starts the download if it has not started (a client asked, or the background reached it); completes when it is verified or failed.</summary>
    public Task EnsureStartedAsync() => _verified ? Task.CompletedTask : _download.Value;

    /// <summary>
    /// Opens a handle to read the file's bytes by (call <see cref="EnsureStartedAsync"/> first, which makes the part
    /// file); it stays valid through the rename and the staging folder's removal.
    /// </summary>
    /// <exception cref="IOException">The file cannot be opened.</exception>
    public SafeFileHandle OpenRead()
    {
        const FileShare share = FileShare.ReadWrite | FileShare.Delete;
        for (int attempt = 0; ; attempt++)
        {
            if (!_verified)
            {
                try
                {
                    return File.OpenHandle(PartPath, FileMode.Open, FileAccess.Read, share);
                }
                catch (FileNotFoundException)
                {
                    // Renamed into place (verified) between the look and the open, or failed and deleted.
                }
            }
            try
            {
                return File.OpenHandle(FinalPath, FileMode.Open, FileAccess.Read, share);
            }
            catch (FileNotFoundException) when (attempt < 2 && _failure is null)
            {
            }
            catch (FileNotFoundException ex) when (_failure is { } failure)
            {
                throw UpstreamHub.Refuse(502, null, failure.Message.Length > 0 ? failure.Message : ex.Message);
            }
        }
    }

    /// <summary>
    /// Reads from <paramref name="offset"/>, waiting for bytes that have not arrived; the file's last byte is given out
    /// only once the whole file is verified.
    /// </summary>
    /// <exception cref="IOException">The file failed its check, or upstream failed it.</exception>
    public async ValueTask<int> ReadAsync(SafeFileHandle handle, long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        long size = Info.Size;
        if (offset >= size || destination.Length == 0)
        {
            return 0;
        }
        while (true)
        {
            Task changed = Volatile.Read(ref _changed).Task;
            if (_failure is { } failure)
            {
                // Upstream's refusal as it is; anything else (a hash that does not match) is a bad gateway.
                throw failure as HubStoreRefusal ?? UpstreamHub.Refuse(502, null, failure.Message);
            }
            bool verified = _verified;
            long available = verified ? size : Volatile.Read(ref _arrived);
            if (!verified && available == size)
            {
                available = size - 1;
            }
            if (offset < available)
            {
                int want = (int)Math.Min(destination.Length, available - offset);
                int read = 0;
                while (read < want)
                {
                    int n = await RandomAccess.ReadAsync(handle, destination.Slice(read, want - read), offset + read, cancellationToken).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new IOException($"{_modelId}/{Info.Path}: the staged file ended at byte {offset + read}.");
                    }
                    read += n;
                }
                return read;
            }
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Signal() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task DownloadAsync(CancellationToken cancellationToken)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(PartPath)!);
            using IncrementalHash hash = Info.Sha256 is not null ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            long have = await HashExistingAsync(hash, cancellationToken).ConfigureAwait(false);
            for (int attempt = 1; have < Info.Size; attempt++)
            {
                try
                {
                    have = await FetchAsync(hash, have, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException and not HubStoreRefusal || ex is HttpRequestException
                    || ex is OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    if (attempt >= _options.MaxAttempts)
                    {
                        throw UpstreamHub.Refuse(502, null, $"{_modelId}/{Info.Path}: the upstream transfer kept failing: {ex.Message}");
                    }
                    _logger.LogWarning("{Model}/{File}: upstream transfer failed at byte {Bytes}: {Problem}; attempt {Attempt} of {Attempts}",
                        _modelId, Info.Path, Volatile.Read(ref _arrived), ex.Message, attempt + 1, _options.MaxAttempts);
                    await _upstream.BackoffAsync(attempt, cancellationToken).ConfigureAwait(false);
                    have = Volatile.Read(ref _arrived);
                }
            }
            string actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            string? expected = Info.Sha256 ?? Info.GitOid;
            if (!string.Equals(actual, expected, StringComparison.Ordinal))
            {
                File.Delete(PartPath);
                throw new InvalidDataException(
                    $"{_modelId}/{Info.Path} at {_commit}: the bytes upstream sent hash to {actual}, not the {expected} its listing gives; nothing of it was kept.");
            }
            File.Move(PartPath, FinalPath, overwrite: true);
            _verified = true;
            _logger.LogDebug("{Model}/{File}: arrived and verified ({Bytes} bytes)", _modelId, Info.Path, Info.Size);
        }
        catch (Exception ex)
        {
            _failure = ex is IOException or InvalidDataException ? ex : new IOException($"{_modelId}/{Info.Path}: {ex.Message}", ex);
            throw;
        }
        finally
        {
            Signal();
        }
    }

    /// <summary>Hashes what an earlier run left in the part file (a git blob id starts with its header); returns its length.</summary>
    private async Task<long> HashExistingAsync(IncrementalHash hash, CancellationToken cancellationToken)
    {
        if (Info.Sha256 is null)
        {
            hash.AppendData(Encoding.ASCII.GetBytes($"blob {Info.Size}\0"));
        }
        if (!File.Exists(PartPath))
        {
            return 0;
        }
        if (new FileInfo(PartPath).Length > Info.Size)
        {
            File.Delete(PartPath);
            return 0;
        }
        using SafeFileHandle handle = File.OpenHandle(PartPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
        long offset = 0;
        try
        {
            int n;
            while ((n = await RandomAccess.ReadAsync(handle, buffer, offset, cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                offset += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        Volatile.Write(ref _arrived, offset);
        Signal();
        return offset;
    }

    /// <summary>One attempt: asks upstream for the bytes from <paramref name="have"/> and appends them; returns the bytes on disk after it.</summary>
    private async Task<long> FetchAsync(IncrementalHash hash, long have, CancellationToken cancellationToken)
    {
        using HttpResponseMessage response = await _upstream.OpenFileAsync(_modelId, _commit, Info.Path, have, _token(), cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.PartialContent)
        {
            if (response.Content.Headers.ContentRange?.From != have)
            {
                throw new IOException($"upstream resumed at byte {response.Content.Headers.ContentRange?.From} instead of {have}");
            }
        }
        else if (response.StatusCode == HttpStatusCode.OK && have > 0)
        {
            // The whole file, whatever was asked: the part and its hash start again.
            hash.GetHashAndReset();
            if (Info.Sha256 is null)
            {
                hash.AppendData(Encoding.ASCII.GetBytes($"blob {Info.Size}\0"));
            }
            have = 0;
            Volatile.Write(ref _arrived, 0);
        }
        else if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new IOException($"upstream answered {(int)response.StatusCode} to a file request");
        }
        await using var output = new FileStream(PartPath, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
        if (have == 0)
        {
            output.SetLength(0);
        }
        output.Position = have;
        Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
            try
            {
                while (have < Info.Size)
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(_options.ReadTimeout);
                    int n = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, Info.Size - have)), timeout.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new IOException($"the transfer ended at byte {have} of {Info.Size}");
                    }
                    await output.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    hash.AppendData(buffer, 0, n);
                    have += n;
                    Volatile.Write(ref _arrived, have);
                    Signal();
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        return have;
    }
}
