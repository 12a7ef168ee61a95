using System.Buffers.Binary;
using System.IO.Hashing;
using ZipLlm.Codecs;
using ZipLlm.Domain;
using ZipLlm.IO;
using ZipLlm.Safetensors;

namespace ZipLlm.Store;

/// <summary>
/// The two reads of a file that must agree: the tensors read in parallel for the SHA-256 that names each one's object,
/// the whole file read in order for the file's own hashes, both taking the XXH3-64 of every chunk; and the checks that
/// the bytes encoded are the bytes the names were taken from, and that no file changed while it was read.
/// </summary>
internal sealed partial class ModelIngester
{
    /// <summary>The whole file's hashes, and each chunk's XXH3-64 tensor by tensor, from one read of the file in order.</summary>
    private sealed record FileScan(ContentHash Sha256, string Xxh128, ulong[][] TensorPrints);

    private FileScan ScanFile(SafetensorsFile file, CancellationToken cancellationToken)
    {
        SafetensorsHeader header = file.Header;
        using var whole = new FileDigest(sha256: true, xxh128: true);
        Span<byte> prefix = stackalloc byte[SafetensorsFormat.LengthPrefixSize];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.HeaderBytes.Length);
        // The header as it was read and validated when the file was opened: that is what its object stores.
        whole.Append(prefix);
        whole.Append(header.HeaderBytes);
        var prints = new ulong[header.Tensors.Count][];
        for (int i = 0; i < header.Tensors.Count; i++)
        {
            TensorInfo t = header.Tensors[i];
            prints[i] = HashChunks((offset, destination) => file.ReadTensor(t, offset, destination), t.Length, whole, cancellationToken);
        }
        return new FileScan(whole.Sha256(), whole.Xxh128(), prints);
    }

    /// <summary>A check for the encoder: each chunk it reads must have the XXH3-64 the first read took of it.</summary>
    private static Action<long, ReadOnlySpan<byte>> SameAs(ulong[] prints, string name) => (index, chunk) =>
    {
        if (XxHash3.HashToUInt64(chunk) != prints[index])
        {
            throw Changed(name);
        }
    };

    private static FileChangedException Changed(string name) =>
        new($"{name} changed while it was being read; nothing of it was stored. Run compress again once the file is stable.");

    private (ContentHash Sha256, ulong[] Prints) HashTensor(SafetensorsFile file, TensorInfo tensor, CancellationToken cancellationToken)
    {
        // Marks itself, so that a tensor hashed outside the budget would show in its peak (inside, it counts once).
        using WorkerBudget.Scope busy = pool.Budget.Enter();
        using var digest = new FileDigest(sha256: true, xxh128: false);
        ulong[] prints = HashChunks((offset, destination) => file.ReadTensor(tensor, offset, destination), tensor.Length, digest, cancellationToken);
        return (digest.Sha256(), prints);
    }

    /// <summary>
    /// Hashes <paramref name="length"/> bytes into <paramref name="digest"/>, read chunk by chunk as the encoder will
    /// read them, and returns each chunk's XXH3-64: the encoder's read is checked against them.
    /// </summary>
    private ulong[] HashChunks(ReadAt read, long length, FileDigest digest, CancellationToken cancellationToken)
    {
        int chunkSize = pool.Options.ChunkSize;
        var prints = new ulong[EncodedTensorFormat.ChunkCount(length, chunkSize)];
        ChunkBuffer buffer = pool.Buffers.Rent((int)Math.Min(chunkSize, Math.Max(length, 1)));
        try
        {
            for (long done = 0, index = 0; done < length; index++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = (int)Math.Min(chunkSize, length - done);
                Span<byte> chunk = buffer.AsSpan(0, n);
                read(done, chunk);
                digest.Append(chunk);
                prints[index] = XxHash3.HashToUInt64(chunk);
                done += n;
            }
        }
        finally
        {
            pool.Buffers.Return(buffer);
        }
        return prints;
    }

    private sealed class SafeFileHandleSource : IDisposable
    {
        private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;
        private readonly string _path;
        private readonly FileVersion _version;

        private SafeFileHandleSource(string path, Microsoft.Win32.SafeHandles.SafeFileHandle handle)
        {
            _path = path;
            _handle = handle;
            _version = FileVersion.Of(handle, path);
            Length = RandomAccess.GetLength(handle);
        }

        /// <summary>Throws when the file changed since it was opened.</summary>
        public void ThrowIfChanged() => _version.ThrowIfChanged(_handle, _path, _path);

        public long Length { get; }

        public static SafeFileHandleSource Open(string path) =>
            new(path, File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan));

        public void Read(long offset, Span<byte> destination) => PositionalRead.ReadExactly(_handle, destination, offset, _path);

        public void Dispose() => _handle.Dispose();
    }
}
