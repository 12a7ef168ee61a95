using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Hub;

/// <summary>Checks a downloaded part file against its listing: its size, then its SHA-256 (LFS files) or git blob id (the rest).</summary>
internal static class HubFileCheck
{
    /// <summary>Whether the file at <paramref name="path"/> has <paramref name="file"/>'s size and hash (true, for a listing without a hash, on size alone).</summary>
    public static async Task<bool> MatchesAsync(HubFile file, string path, CancellationToken cancellationToken)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length != file.Size)
        {
            return false;
        }
        string? expected = file.Sha256 ?? file.GitOid;
        return expected is null || string.Equals(await HashAsync(file, path, cancellationToken).ConfigureAwait(false), expected, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Returns when <paramref name="partPath"/> matches <paramref name="file"/>; otherwise deletes it and throws.</summary>
    /// <exception cref="HubException">The size or hash differs (<see cref="HubErrorKind.Integrity"/>).</exception>
    public static async Task VerifyAsync(ModelId modelId, HubFile file, string partPath, CancellationToken cancellationToken)
    {
        // Every file, an empty one too, has been fetched into its part file by now.
        long length = File.Exists(partPath) ? new FileInfo(partPath).Length : -1;
        if (length != file.Size)
        {
            File.Delete(partPath);
            throw new HubException(HubErrorKind.Integrity, $"{modelId}: {file.Path}: received {length} bytes, the listing says {file.Size}.");
        }
        string? expected = file.Sha256 ?? file.GitOid;
        if (expected is null)
        {
            return;
        }
        string actual = await HashAsync(file, partPath, cancellationToken).ConfigureAwait(false);
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(partPath);
            string algorithm = file.Sha256 is not null ? "SHA-256" : "git blob id";
            throw new HubException(HubErrorKind.Integrity,
                $"{modelId}: {file.Path}: {algorithm} {actual} does not match the listing's {expected}; the partial file was removed.");
        }
    }

    /// <summary>The hash the listing gives for <paramref name="file"/> (SHA-256 for LFS files, the git blob id otherwise) of the bytes at <paramref name="path"/>.</summary>
    private static async Task<string> HashAsync(HubFile file, string path, CancellationToken cancellationToken)
    {
        string actual;
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, HubFileDownload.CopyBufferSize, FileOptions.SequentialScan | FileOptions.Asynchronous);
        await using (stream.ConfigureAwait(false))
        {
            if (file.Sha256 is not null)
            {
                actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
            }
            else
            {
                // Git's blob id: SHA-1 over "blob <size>\0" followed by the content.
                using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
                sha1.AppendData(Encoding.ASCII.GetBytes($"blob {file.Size}\0"));
                byte[] buffer = ArrayPool<byte>.Shared.Rent(HubFileDownload.CopyBufferSize);
                try
                {
                    int n;
                    while ((n = await stream.ReadAsync(buffer.AsMemory(0, HubFileDownload.CopyBufferSize), cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        sha1.AppendData(buffer, 0, n);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
            }
        }
        return actual;
    }
}
