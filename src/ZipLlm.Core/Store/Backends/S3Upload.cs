using System.Buffers;
using Amazon.S3.Model;

namespace ZipLlm.Store.Backends;

/// <summary>
/// An object being written to S3. What fits one part goes up as a single PUT at the commit; a larger object goes
/// up as a multipart upload, each part sent as soon as it is full while the next fills, at most
/// <see cref="PartsInFlight"/> of them at once, so an upload holds (<see cref="PartsInFlight"/> + 1) parts of
/// memory whatever the object's size. The object is visible only once the upload completes; one disposed without
/// a commit is aborted (one left by a killed process is aborted by <see cref="IStoreBackend.SweepTemporary"/>).
/// </summary>
internal sealed class S3Upload : IObjectUpload
{
    /// <summary>Parts of one upload sent at once: the connection's gate bounds the requests of all of them.</summary>
    public const int PartsInFlight = 2;

    private readonly S3Connection _connection;
    private readonly string _bucket;
    private readonly string _key;
    private readonly int _partSize;
    private readonly List<Task<PartETag>> _parts = [];
    private readonly CancellationTokenSource _abandon = new();
    private byte[]? _buffer;
    private int _filled;
    private long _length;
    private string? _uploadId;
    private bool _committed;

    public S3Upload(S3Connection connection, string bucket, string key, int partSize)
    {
        _connection = connection;
        _bucket = bucket;
        _key = key;
        _partSize = partSize;
        Stream = new UploadStream(this);
    }

    public Stream Stream { get; }

    public long Commit()
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        if (_uploadId is null)
        {
            byte[] bytes = _buffer ?? [];
            _connection.Call($"PUT {_key}", (client, token) => client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = _bucket,
                Key = _key,
                InputStream = new MemoryStream(bytes, 0, _filled, writable: false),
                AutoCloseStream = true,
            }, token));
        }
        else
        {
            if (_filled > 0)
            {
                SendPart();
            }
            var etags = _parts.Select(p => p.GetAwaiter().GetResult()).ToList();
            string uploadId = _uploadId;
            // Completed without a condition: RADOS Gateway ignores If-None-Match here, and an object is named by its
            // content, so completing over an equal one is harmless.
            _connection.Call($"complete upload of {_key}", (client, token) => client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = _bucket,
                Key = _key,
                UploadId = uploadId,
                PartETags = etags,
            }, token));
            _uploadId = null;
        }
        _committed = true;
        ReturnBuffer();
        return _length;
    }

    public void Dispose()
    {
        _abandon.Cancel();
        foreach (Task<PartETag> part in _parts)
        {
            // Each part's own failure was (or will be) reported by the commit that waits for it.
            part.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default).Wait();
        }
        if (_uploadId is { } uploadId && !_committed)
        {
            // Once, and for seconds at most: clean-up must not hold up a run that is failing or cancelled.
            using var abort = new CancellationTokenSource(S3Locks.ReleaseTimeout);
            try
            {
                _connection.CallUngated($"abort upload of {_key}", (client, token) => client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest
                {
                    BucketName = _bucket,
                    Key = _key,
                    UploadId = uploadId,
                }, token), abort.Token, tries: 1);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException)
            {
                // Swept later: SweepTemporary aborts stale uploads.
            }
        }
        _committed = true;
        ReturnBuffer();
        _abandon.Dispose();
    }

    private void Write(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        while (!data.IsEmpty)
        {
            _buffer ??= ArrayPool<byte>.Shared.Rent(_partSize);
            int take = Math.Min(data.Length, _partSize - _filled);
            data[..take].CopyTo(_buffer.AsSpan(_filled));
            _filled += take;
            _length += take;
            data = data[take..];
            if (_filled == _partSize && !data.IsEmpty)
            {
                // A full part is sent once more bytes follow: an object of exactly one part stays a single PUT.
                SendPart();
            }
        }
    }

    private void SendPart()
    {
        if (_uploadId is null)
        {
            InitiateMultipartUploadResponse started = _connection.Call($"start upload of {_key}", (client, token) =>
                client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _bucket, Key = _key }, token));
            _uploadId = started.UploadId;
        }
        // Memory stays bounded: wait for the oldest part in flight before sending another.
        int inFlight = _parts.Count(p => !p.IsCompleted);
        if (inFlight >= PartsInFlight)
        {
            Task.WaitAny(_parts.Where(p => !p.IsCompleted).ToArray());
        }
        foreach (Task<PartETag> failed in _parts.Where(p => p.IsFaulted))
        {
            failed.GetAwaiter().GetResult();
        }
        byte[] part = _buffer!;
        int length = _filled;
        int number = _parts.Count + 1;
        string uploadId = _uploadId;
        _buffer = null;
        _filled = 0;
        _parts.Add(SendPartAsync(part, length, number, uploadId));
    }

    private async Task<PartETag> SendPartAsync(byte[] part, int length, int number, string uploadId)
    {
        try
        {
            UploadPartResponse response = await _connection.CallAsync($"PUT part {number} of {_key}", (client, token) => client.UploadPartAsync(new UploadPartRequest
            {
                BucketName = _bucket,
                Key = _key,
                UploadId = uploadId,
                PartNumber = number,
                InputStream = new MemoryStream(part, 0, length, writable: false),
                PartSize = length,
            }, token), _abandon.Token).ConfigureAwait(false);
            return new PartETag(number, response.ETag);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(part);
        }
    }

    private void ReturnBuffer()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }

    /// <summary>The write-only stream of the upload.</summary>
    private sealed class UploadStream(S3Upload upload) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => upload._length;

        public override long Position
        {
            get => upload._length;
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => upload.Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer) => upload.Write(buffer);

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
