namespace ZipLlm.Store;

/// <summary>
/// An advisory lock on a file (flock on Unix): shared locks coexist, an exclusive one excludes all.
/// The operating system releases it when the process dies, so a killed run never leaves a store locked.
/// </summary>
public sealed class FileLock : IDisposable
{
    private readonly FileStream _stream;

    private FileLock(FileStream stream) => _stream = stream;

    /// <summary>Takes the lock, waiting up to <paramref name="timeout"/> for other holders to let go.</summary>
    /// <exception cref="TimeoutException">The lock was not free in time.</exception>
    public static FileLock Acquire(string path, bool exclusive, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        DateTime deadline = DateTime.UtcNow + timeout;
        int delay = 5;
        while (true)
        {
            try
            {
                // .NET takes flock(LOCK_EX) for FileShare.None and flock(LOCK_SH) otherwise, without blocking.
                var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite,
                    exclusive ? FileShare.None : FileShare.ReadWrite, bufferSize: 1);
                return new FileLock(stream);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                cancellationToken.WaitHandle.WaitOne(delay);
                cancellationToken.ThrowIfCancellationRequested();
                delay = Math.Min(delay * 2, 200);
            }
            catch (IOException ex)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:F0} s waiting for the lock {path}; another zipllm process holds it.", ex);
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _stream.Dispose();
}
