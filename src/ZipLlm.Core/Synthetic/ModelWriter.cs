using System.Buffers;
using ZipLlm.Config;
using ZipLlm.Safetensors;
using ZipLlm.IO;

namespace ZipLlm.Synthetic;

/// <summary>Writes planned model folders: each file through a temporary name and a rename.</summary>
internal static class ModelWriter
{
    /// <summary>Write buffer of each output file.</summary>
    private const int FileBufferSize = 1 << 20;

    /// <summary>
    /// Whether every planned file is present with its exact length, small files with their exact
    /// bytes and shards with their exact header (which carries every name, shape and offset). The
    /// README names the seed and size, so a folder made with other settings does not pass.
    /// </summary>
    public static bool IsComplete(ModelPlan plan)
    {
        foreach (PlannedFile file in plan.Files)
        {
            string path = Path.Combine(plan.Folder, file.Name);
            var info = new FileInfo(path);
            if (!info.Exists || info.Length != file.Length)
            {
                return false;
            }
            PlannedFile content = file is CopiedFile copied ? copied.Source : file;
            switch (content)
            {
                case SmallFile small when !File.ReadAllBytes(path).AsSpan().SequenceEqual(small.Content):
                    return false;
                case ShardFile shard when !HeaderMatches(path, shard):
                    return false;
            }
        }
        return true;
    }

    public static void Write(ModelPlan plan, int threads, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(plan.Folder);
        DeleteStaleTemporaries(plan.Folder);
        foreach (PlannedFile file in plan.Files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string path = Path.Combine(plan.Folder, file.Name);
            if (file is SmallFile small)
            {
                AtomicFile.WriteAllBytes(path, small.Content);
                continue;
            }
            string temp = AtomicFile.TempPathFor(path);
            try
            {
                switch (file)
                {
                    case ShardFile shard:
                        WriteShard(temp, shard, threads, cancellationToken);
                        break;
                    case CopiedFile copied:
                        File.Copy(Path.Combine(copied.SourceFolder, copied.Name), temp, overwrite: false);
                        break;
                    default:
                        throw new InvalidOperationException($"Unknown planned file {file.GetType().Name}.");
                }
                File.Move(temp, path, overwrite: true);
            }
            catch
            {
                AtomicFile.TryDelete(temp);
                throw;
            }
        }
    }

    private static void WriteShard(string temp, ShardFile shard, int threads, CancellationToken cancellationToken)
    {
        using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileBufferSize);
        stream.SetLength(shard.Length);
        shard.Header.WriteTo(stream);

        // A batch of blocks is made in parallel, then written in order: memory stays at
        // batch × block size whatever the tensor's size, and the bytes do not depend on the thread count.
        int batch = Math.Max(1, threads) * 2;
        int maxElementSize = shard.Tensors.Count == 0 ? 1 : shard.Tensors.Max(t => Math.Max(1, t.DType.BitSize() / 8));
        int blockBytes = TensorFill.BlockElements * maxElementSize;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(checked(batch * blockBytes));
        try
        {
            var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads), CancellationToken = cancellationToken };
            foreach (PlannedTensor tensor in shard.Tensors)
            {
                int elementSize = tensor.DType.BitSize() / 8;
                long elements = tensor.ElementCount;
                long blocks = (elements + TensorFill.BlockElements - 1) / TensorFill.BlockElements;
                for (long start = 0; start < blocks; start += batch)
                {
                    int inBatch = (int)Math.Min(batch, blocks - start);
                    int Count(int i) => (int)Math.Min(TensorFill.BlockElements, elements - (start + i) * TensorFill.BlockElements);
                    if (inBatch == 1)
                    {
                        tensor.Fill.Fill(start, Count(0), buffer.AsSpan(0, Count(0) * elementSize));
                    }
                    else
                    {
                        Parallel.For(0, inBatch, options, i =>
                            tensor.Fill.Fill(start + i, Count(i), buffer.AsSpan(i * blockBytes, Count(i) * elementSize)));
                    }
                    for (int i = 0; i < inBatch; i++)
                    {
                        stream.Write(buffer, i * blockBytes, Count(i) * elementSize);
                    }
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (stream.Position != shard.Length)
        {
            throw new InvalidOperationException($"{shard.Name}: wrote {stream.Position} bytes, planned {shard.Length}.");
        }
        stream.Flush(flushToDisk: true);
    }

    private static bool HeaderMatches(string path, ShardFile shard)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var expected = new MemoryStream();
        shard.Header.WriteTo(expected);
        byte[] actual = new byte[expected.Length];
        return stream.ReadAtLeast(actual, actual.Length, throwOnEndOfStream: false) == actual.Length
            && actual.AsSpan().SequenceEqual(expected.GetBuffer().AsSpan(0, (int)expected.Length));
    }

    /// <summary>Removes what an interrupted run left: hidden <c>.*.tmp</c> files of our own naming.</summary>
    private static void DeleteStaleTemporaries(string folder)
    {
        foreach (string path in Directory.EnumerateFiles(folder, ".*.tmp"))
        {
            AtomicFile.TryDelete(path);
        }
    }
}
