namespace ZipLlm.BitX;

/// <summary>
/// Writes a file under a temporary name in the destination's folder and renames it into place on
/// <see cref="Commit"/>; disposed without a commit, it deletes the temporary file, so a failed run
/// leaves neither a partial file nor a changed destination.
/// </summary>
internal sealed class AtomicFileWriter : IDisposable
{
    private const int BufferSize = 1 << 20;

    private readonly string _path;
    private readonly string _temporary;
    private FileStream? _stream;

    public AtomicFileWriter(string path)
    {
        _path = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(_path) ?? throw new ArgumentException($"{path}: not a file path.", nameof(path));
        _temporary = Path.Combine(folder, $".{Path.GetFileName(_path)}.{Guid.NewGuid():N}.tmp");
        _stream = new FileStream(_temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize);
    }

    public Stream Stream => _stream ?? throw new ObjectDisposedException(_path);

    /// <summary>Flushes the file to disk and renames it to the destination, replacing any file there.</summary>
    /// <returns>The file's length.</returns>
    public long Commit()
    {
        FileStream stream = _stream ?? throw new ObjectDisposedException(_path);
        stream.Flush(flushToDisk: true);
        long length = stream.Length;
        stream.Dispose();
        _stream = null;
        File.Move(_temporary, _path, overwrite: true);
        return length;
    }

    public void Dispose()
    {
        if (_stream is not null)
        {
            _stream.Dispose();
            _stream = null;
            try
            {
                File.Delete(_temporary);
            }
            catch (IOException)
            {
                // Best effort: the original error matters more than a leftover temporary file.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }
}
