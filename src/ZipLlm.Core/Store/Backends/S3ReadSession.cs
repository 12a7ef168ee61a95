using Amazon.S3.Model;
using ZipLlm.Domain;

namespace ZipLlm.Store.Backends;

/// <summary>
/// Object reads from S3 by ranged GETs, never a whole object at once. Opening an object fetches its first
/// <see cref="HeadSize"/> bytes (its header and, for the many small tensors, all of it) and learns its length
/// from the same answer; later reads inside that head are served from it, the rest each by a GET of its range.
/// Heads are kept for the <see cref="Capacity"/> objects used last, so a session's memory is bounded however
/// many objects it opens. Thread-safe: restore's workers read side by side, as many GETs in flight as the
/// connection's gate lets through.
/// </summary>
internal sealed class S3ReadSession(S3Connection connection, S3Location location) : IObjectReadSession
{
    /// <summary>Bytes fetched when an object is opened.</summary>
    public const int HeadSize = 64 << 10;

    /// <summary>Heads kept: 4 MiB at most.</summary>
    public const int Capacity = 64;

    private readonly Dictionary<ContentHash, LinkedListNode<(ContentHash Hash, byte[] Head)>> _heads = [];
    private readonly LinkedList<(ContentHash Hash, byte[] Head)> _recency = []; // most recently used first
    private readonly Lock _gate = new();

    public IObjectContent Open(ContentHash hash)
    {
        string key = location.ObjectKey(hash);
        byte[] head = new byte[HeadSize];
        long length;
        int got;
        try
        {
            (length, got) = connection.Call($"GET {key}", async (client, token) =>
            {
                using GetObjectResponse response = await client.GetObjectAsync(new GetObjectRequest
                {
                    BucketName = location.Bucket,
                    Key = key,
                    ByteRange = new ByteRange(0, HeadSize - 1),
                }, token).ConfigureAwait(false);
                long total = TotalLength(response);
                int wanted = (int)Math.Min(total, HeadSize);
                int read = await response.ResponseStream.ReadAtLeastAsync(head.AsMemory(0, wanted), wanted, throwOnEndOfStream: false, token).ConfigureAwait(false);
                return (total, read);
            });
        }
        catch (S3RequestException ex) when (ex.IsNotFound)
        {
            throw new StoreDamageException(null, null, hash, "the object is missing from the store", ex);
        }
        catch (S3RequestException ex) when (ex.Status == System.Net.HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            (length, got) = (0, 0); // an empty object has no first byte to ask for
        }
        if (got < Math.Min(length, HeadSize))
        {
            throw new StoreDamageException(null, null, hash, $"the object's first {Math.Min(length, HeadSize)} bytes came back as {got} (it was replaced while read)");
        }
        Remember(hash, got == HeadSize ? head : head.AsSpan(0, got).ToArray());
        return new Content(this, hash, length);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _heads.Clear();
            _recency.Clear();
        }
    }

    private static long TotalLength(GetObjectResponse response)
    {
        // "bytes 0-65535/1234567": the total follows the slash. A server that ignores the range sends the whole
        // object, and its length is the body's.
        string? range = response.ContentRange;
        if (range is not null && range.LastIndexOf('/') is int slash and >= 0
            && long.TryParse(range.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long total))
        {
            return total;
        }
        return response.ContentLength;
    }

    private void Remember(ContentHash hash, byte[] head)
    {
        lock (_gate)
        {
            if (_heads.Remove(hash, out var old))
            {
                _recency.Remove(old);
            }
            _heads[hash] = _recency.AddFirst((hash, head));
            while (_heads.Count > Capacity)
            {
                _heads.Remove(_recency.Last!.Value.Hash);
                _recency.RemoveLast();
            }
        }
    }

    private byte[]? RecallHead(ContentHash hash)
    {
        lock (_gate)
        {
            if (!_heads.TryGetValue(hash, out var node))
            {
                return null;
            }
            _recency.Remove(node);
            _recency.AddFirst(node);
            return node.Value.Head;
        }
    }

    private void ReadRange(ContentHash hash, long offset, Span<byte> destination)
    {
        string key = location.ObjectKey(hash);
        byte[] bytes = System.Buffers.ArrayPool<byte>.Shared.Rent(destination.Length);
        try
        {
            int length = destination.Length;
            int got;
            try
            {
                got = connection.Call($"GET {key} bytes {offset}-{offset + length - 1}", async (client, token) =>
                {
                    using GetObjectResponse response = await client.GetObjectAsync(new GetObjectRequest
                    {
                        BucketName = location.Bucket,
                        Key = key,
                        ByteRange = new ByteRange(offset, offset + length - 1),
                    }, token).ConfigureAwait(false);
                    return await response.ResponseStream.ReadAtLeastAsync(bytes.AsMemory(0, length), length, throwOnEndOfStream: false, token).ConfigureAwait(false);
                });
            }
            catch (S3RequestException ex) when (ex.IsNotFound)
            {
                throw new StoreDamageException(null, null, hash, "the object is missing from the store (deleted while it was read)", ex);
            }
            catch (S3RequestException ex) when (ex.Status == System.Net.HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                throw new EndOfStreamException($"object {hash.Hex}: read of {length} bytes at {offset} is past its end (it was replaced while read).", ex);
            }
            if (got != length)
            {
                throw new EndOfStreamException($"object {hash.Hex}: read of {length} bytes at {offset} got {got} (it was replaced while read).");
            }
            bytes.AsSpan(0, length).CopyTo(destination);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    private sealed class Content(S3ReadSession session, ContentHash hash, long length) : IObjectContent
    {
        public long Length => length;

        public void Read(long offset, Span<byte> destination)
        {
            if (offset < 0 || offset > length - destination.Length)
            {
                throw new EndOfStreamException($"object {hash.Hex}: read of {destination.Length} bytes at {offset} is past its end at {length}.");
            }
            if (destination.IsEmpty)
            {
                return;
            }
            if (offset + destination.Length <= HeadSize && session.RecallHead(hash) is { } head && offset + destination.Length <= head.Length)
            {
                head.AsSpan((int)offset, destination.Length).CopyTo(destination);
                return;
            }
            session.ReadRange(hash, offset, destination);
        }
    }
}
