using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace ZipLlm.Serve;

/// <summary>
/// The ids the hub gives files: for an LFS file the git blob id of its pointer file (the file itself goes by its
/// SHA-256); for any other, the git blob id of its bytes, <c>sha1("blob SIZE\0" + bytes)</c>, which only decoding the
/// file gives. That is done the first time it is needed, once (concurrent askers wait for the same decode), and kept
/// by the file's SHA-256, so identical files across models are read once.
/// </summary>
public sealed class GitBlobIds(IHubStore store)
{
    private const int BufferSize = 1 << 16;
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _bySha256 = new(StringComparer.Ordinal);

    /// <summary>The LFS pointer file the hub keeps in git for <paramref name="file"/>.</summary>
    public static string LfsPointer(HubFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return $"version https://git-lfs.github.com/spec/v1\noid sha256:{file.Sha256}\nsize {file.Size}\n";
    }

    /// <summary>The git blob id of <paramref name="content"/>: SHA-1 of <c>blob LENGTH\0</c> and the bytes.</summary>
    public static string Of(ReadOnlySpan<byte> content)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        hash.AppendData(Encoding.ASCII.GetBytes($"blob {content.Length}\0"));
        hash.AppendData(content);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The id the hub lists for <paramref name="file"/> (<c>oid</c>, <c>blobId</c>).</summary>
    /// <exception cref="IOException">The file's bytes cannot be read back.</exception>
    public ValueTask<string> GetAsync(HubModel model, HubFile file, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(file);
        if (file.IsLfs)
        {
            return ValueTask.FromResult(Of(Encoding.ASCII.GetBytes(LfsPointer(file))));
        }
        if (file.GitOid is { } known)
        {
            return ValueTask.FromResult(known);
        }
        // The decode is not tied to one request: a client that goes away does not fail the others waiting for it.
        Lazy<Task<string>> lazy = _bySha256.GetOrAdd(file.Sha256, _ => new Lazy<Task<string>>(() => ComputeAsync(model, file)));
        return new ValueTask<string>(WaitAsync(lazy, file.Sha256, cancellationToken));
    }

    /// <summary>The file's ETag, unquoted: its SHA-256 for an LFS file, else its git blob id.</summary>
    /// <exception cref="IOException">The file's bytes cannot be read back.</exception>
    public ValueTask<string> ETagAsync(HubModel model, HubFile file, CancellationToken cancellationToken) =>
        file.IsLfs ? ValueTask.FromResult(file.Sha256) : GetAsync(model, file, cancellationToken);

    private async Task<string> WaitAsync(Lazy<Task<string>> lazy, string sha256, CancellationToken cancellationToken)
    {
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (lazy.Value.IsFaulted)
        {
            // A failed read is not remembered: the next request tries again.
            _bySha256.TryRemove(new KeyValuePair<string, Lazy<Task<string>>>(sha256, lazy));
            throw;
        }
    }

    private async Task<string> ComputeAsync(HubModel model, HubFile file)
    {
        await using IHubFileReader reader = await store.OpenFileAsync(model, file, CancellationToken.None).ConfigureAwait(false);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        hash.AppendData(Encoding.ASCII.GetBytes($"blob {file.Size}\0"));
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            long offset = 0;
            while (offset < file.Size)
            {
                int n = await reader.ReadAsync(offset, buffer.AsMemory(0, (int)Math.Min(buffer.Length, file.Size - offset)), CancellationToken.None).ConfigureAwait(false);
                if (n <= 0)
                {
                    throw new EndOfStreamException($"{model.Id}/{file.Path} ended at byte {offset} of {file.Size}.");
                }
                hash.AppendData(buffer, 0, n);
                offset += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
