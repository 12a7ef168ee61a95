using System.Security.Cryptography;
using ZipLlm.Serve;

namespace ZipLlm.Tests.Serve;

/// <summary>An in-memory <see cref="IHubStore"/>: models of byte arrays; a file can be made to fail from an offset on.</summary>
internal sealed class FakeHubStore : IHubStore
{
    private readonly Dictionary<string, (HubModel Model, Dictionary<string, byte[]> Bytes)> _models = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _failFrom = new(StringComparer.Ordinal);
    private readonly HashSet<string> _lockLost = new(StringComparer.Ordinal);

    public int Opens { get; private set; }

    public HubModel Add(string id, params (string Path, byte[] Bytes)[] files)
    {
        var bytes = files.ToDictionary(f => f.Path, f => f.Bytes, StringComparer.Ordinal);
        List<HubFile> hubFiles = files
            .Select(f => new HubFile(f.Path, f.Bytes.Length, Convert.ToHexStringLower(SHA256.HashData(f.Bytes)), f.Path.EndsWith(".safetensors", StringComparison.Ordinal)))
            .OrderBy(f => f.Path, StringComparer.Ordinal)
            .ToList();
        var model = new HubModel(id, ZipLlmHubStore.DerivedCommit(hubFiles), new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero), hubFiles);
        _models[id] = (model, bytes);
        return model;
    }

    /// <summary>Reads of <paramref name="path"/> (of any model) at or past <paramref name="offset"/> throw as a damaged chunk does.</summary>
    public void FailFrom(string path, long offset) => _failFrom[path] = offset;

    /// <summary>Reads of <paramref name="path"/> (of any model) throw as a read whose store lock was lost meanwhile does.</summary>
    public void LoseLockOn(string path) => _lockLost.Add(path);

    public ValueTask<IReadOnlyList<HubModel>> ListModelsAsync(CancellationToken cancellationToken) =>
        ValueTask.FromResult<IReadOnlyList<HubModel>>(_models.Values.Select(m => m.Model).OrderBy(m => m.Id, StringComparer.Ordinal).ToList());

    public ValueTask<HubModel?> FindModelAsync(string id, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_models.TryGetValue(id, out var m) ? m.Model : null);

    public ValueTask<IHubFileReader> OpenFileAsync(HubModel model, HubFile file, CancellationToken cancellationToken)
    {
        Opens++;
        if (!_models.TryGetValue(model.Id, out var m) || !m.Bytes.TryGetValue(file.Path, out byte[]? bytes))
        {
            throw new FileNotFoundException("gone", file.Path);
        }
        return ValueTask.FromResult<IHubFileReader>(new Reader(bytes, _failFrom.GetValueOrDefault(file.Path, long.MaxValue), _lockLost.Contains(file.Path)));
    }

    private sealed class Reader(byte[] bytes, long failFrom, bool lockLost) : IHubFileReader
    {
        public ValueTask<int> ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
        {
            if (lockLost)
            {
                throw new StoreLockLostException("/store", "reading acme/llama", new IOException("object 1234abcd missing"));
            }
            if (offset >= failFrom)
            {
                throw new IOException("object 1234abcd: chunk 0 fails its checksum");
            }
            // Short reads, as a chunked store gives them: never past a 4 KiB boundary.
            int n = (int)Math.Min(Math.Min(destination.Length, bytes.Length - offset), 4096 - offset % 4096);
            if (n <= 0)
            {
                return ValueTask.FromResult(0);
            }
            bytes.AsSpan((int)offset, n).CopyTo(destination.Span);
            return ValueTask.FromResult(n);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
