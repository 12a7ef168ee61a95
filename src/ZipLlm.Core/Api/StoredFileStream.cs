using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Backends;

namespace ZipLlm;

/// <summary>
/// One stored file as a read-only, seekable stream, laid out as restore writes it (<see cref="StoredFileLayout"/>:
/// the header decoded when the stream opens). A read decodes only the chunk it falls in, and keeps that chunk
/// while reads stay in it; a tensor's object is opened (header and chunk index read) the first time it is touched.
/// </summary>
internal sealed class StoredFileStream : Stream
{
    private readonly ModelId _modelId;
    private readonly StoredFile _file;
    private readonly ObjectStore.ObjectReader _reader;
    private readonly ChunkCodec _codec;
    private readonly IDisposable _storeLock;
    private readonly StoredFileLayout _layout;
    private readonly IChunkSource?[] _sources;
    private readonly string _location;
    private long _position;
    private ChunkBuffer? _chunk;
    private int _chunkSegment = -1;
    private long _chunkStart = -1;
    private int _chunkLength;
    private bool _disposed;
    // 1 while a read is under way: a stream is for one thread at a time, and one used from several at once is told so.
    private int _reading;

    /// <summary>Called inside each read, once it holds the stream: a test hook (a test holds a read there to overlap another).</summary>
    internal Action? Reading { get; set; }

    private StoredFileStream(ModelId modelId, ObjectStore.ObjectReader reader, ChunkCodec codec, IDisposable storeLock, StoredFileLayout layout, string location)
    {
        _location = location;
        _modelId = modelId;
        _file = layout.File;
        _reader = reader;
        _codec = codec;
        _storeLock = storeLock;
        _layout = layout;
        _sources = new IChunkSource?[layout.Objects.Length];
    }

    /// <summary>Opens <paramref name="file"/>; the stream owns <paramref name="storeLock"/> from here on, also when this throws.</summary>
    /// <exception cref="StoreDamageException">The stored header cannot be read back, or does not fit the manifest.</exception>
    /// <exception cref="StoreLockLostException">The store lock was lost (and the header's object with it).</exception>
    public static StoredFileStream Open(ModelStore store, WorkerPool pool, ModelId modelId, StoredFile file, IDisposable storeLock)
    {
        ObjectStore.ObjectReader reader = store.Objects.OpenReader();
        var codec = new ChunkCodec(pool.Options, pool.Buffers);
        try
        {
            return new StoredFileStream(modelId, reader, codec, storeLock, StoredFileLayout.Build(modelId, file, reader, pool), store.Backend.Location);
        }
        catch (StoreDamageException ex) when (ILosableLock.WasLost(storeLock))
        {
            Release(reader, codec, storeLock);
            throw new StoreLockLostException(store.Backend.Location, $"opening {modelId}: {file.Path}", ex);
        }
        catch
        {
            Release(reader, codec, storeLock);
            throw;
        }
    }

    private static void Release(ObjectStore.ObjectReader reader, ChunkCodec codec, IDisposable storeLock)
    {
        reader.Dispose();
        codec.Dispose();
        storeLock.Dispose();
    }

    /// <inheritdoc/>
    public override bool CanRead => !_disposed;

    /// <inheritdoc/>
    public override bool CanSeek => !_disposed;

    /// <inheritdoc/>
    public override bool CanWrite => false;

    /// <inheritdoc/>
    public override long Length
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _file.Size;
        }
    }

    /// <inheritdoc/>
    public override long Position
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _position;
        }
        set
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position = value;
        }
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => checked(_position + offset),
            SeekOrigin.End => checked(_file.Size + offset),
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        if (target < 0)
        {
            throw new IOException($"Seek to {target}, before the start of {_file.Path}.");
        }
        _position = target;
        return target;
    }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        return Read(buffer.AsSpan(offset, count));
    }

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">Another thread is reading the stream at the same moment.</exception>
    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Interlocked.Exchange(ref _reading, 1) != 0)
        {
            // Two readers would share the position and the chunk buffer: wrong bytes, or what looks like damage.
            throw new InvalidOperationException(
                $"The stream of {_file.Path} is being read by another thread: a stream from OpenFile is for one thread at a time (open one per thread, or use ReadFileAsync).");
        }
        try
        {
            Reading?.Invoke();
            int done = 0;
            while (done < buffer.Length && _position < _file.Size)
            {
                int copied = CopyAt(_position, buffer[done..]);
                done += copied;
                _position += copied;
            }
            return done;
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
        }
    }

    /// <inheritdoc/>
    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 1 ? one[0] : -1;
    }

    /// <inheritdoc/>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // The bytes come from decoding on this thread: there is no I/O to wait for without a thread.
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }
        try
        {
            return ValueTask.FromResult(Read(buffer.Span));
        }
        catch (Exception ex)
        {
            return ValueTask.FromException<int>(ex);
        }
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    /// <summary>Copies bytes from <paramref name="position"/> (inside the file), up to the end of the chunk or header it falls in.</summary>
    private int CopyAt(long position, Span<byte> destination)
    {
        byte[] head = _layout.Head;
        if (position < head.Length)
        {
            int n = Math.Min(destination.Length, head.Length - (int)position);
            head.AsSpan((int)position, n).CopyTo(destination);
            return n;
        }
        (int segment, long inSegment) = _layout.Locate(position);
        if (_chunkSegment != segment || inSegment < _chunkStart || inSegment >= _chunkStart + _chunkLength)
        {
            LoadChunk(segment, inSegment);
        }
        int offset = (int)(inSegment - _chunkStart);
        int count = Math.Min(destination.Length, _chunkLength - offset);
        _chunk!.AsSpan(offset, count).CopyTo(destination);
        return count;
    }

    private void LoadChunk(int segment, long inSegment)
    {
        IChunkSource source = SourceOf(segment);
        int chunkSize = source.ChunkSize > 0 ? source.ChunkSize : _codec.Options.ChunkSize;
        long start = inSegment / chunkSize * chunkSize;
        int length = (int)Math.Min(chunkSize, source.Length - start);
        if (_chunk is null || _chunk.Length < length)
        {
            if (_chunk is not null)
            {
                _codec.Buffers.Return(_chunk);
            }
            _chunk = _codec.Buffers.Rent(chunkSize);
        }
        // Marked empty first: a chunk that fails to decode must not be served half-written by the next read.
        _chunkSegment = -1;
        try
        {
            source.ReadChunk(start, _chunk.AsSpan(0, length), _codec);
        }
        catch (StoreDamageException ex)
        {
            // Every source is an object reader's, which names the object to blame in all it throws.
            throw Blame(ex.InFile(_modelId, _file.Path));
        }
        _chunkSegment = segment;
        _chunkStart = start;
        _chunkLength = length;
    }

    private IChunkSource SourceOf(int segment)
    {
        if (_sources[segment] is { } open)
        {
            return open;
        }
        IChunkSource source;
        try
        {
            source = _reader.OpenSource(_layout.Objects[segment]);
        }
        catch (StoreDamageException ex)
        {
            throw Blame(ex.InFile(_modelId, _file.Path));
        }
        long expected = _layout.SegmentLength(segment);
        if (source.Length != expected)
        {
            throw Blame(new StoreDamageException(_modelId, _file.Path, _layout.Objects[segment],
                $"the object holds {source.Length} bytes where the file needs {expected} there"));
        }
        _sources[segment] = source;
        return source;
    }

    /// <summary>
    /// What a read that met <paramref name="damage"/> reports: the damage, unless the stream's store lock was lost
    /// meanwhile (a remove or gc elsewhere may have deleted what the stream reads: that is no damage).
    /// </summary>
    private IOException Blame(StoreDamageException damage) =>
        ILosableLock.WasLost(_storeLock) ? new StoreLockLostException(_location, $"reading {_modelId}: {_file.Path}", damage) : damage;

    /// <inheritdoc/>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException("A stored file is read-only.");

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("A stored file is read-only.");

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            if (_chunk is not null)
            {
                _codec.Buffers.Return(_chunk);
                _chunk = null;
            }
            Release(_reader, _codec, _storeLock);
        }
        base.Dispose(disposing);
    }
}
