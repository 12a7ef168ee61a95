using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Mount.Models;
using ZipLlm.Store;

namespace ZipLlm.Tests.Mount;

/// <summary>An in-memory store for <see cref="ModelFileSystem"/>: models with file contents, changed by the test, and files whose reads fail as damaged.</summary>
internal sealed class FakeModelSource : IModelSource
{
    private readonly Dictionary<string, (DateTimeOffset StoredAt, Dictionary<string, byte[]> Files)> _models = [];

    public string Location => "memory://fake";

    /// <summary>How many times the listing was asked for.</summary>
    public int Listings { get; private set; }

    /// <summary>Files (model/path) whose reads throw <see cref="StoreDamageException"/>.</summary>
    public HashSet<string> Damaged { get; } = [];

    /// <summary>Reads asked for: (model, path, offset, length).</summary>
    public List<(string Model, string Path, long Offset, int Length)> Reads { get; } = [];

    public void Add(string modelId, DateTimeOffset storedAt, params (string Path, byte[] Bytes)[] files)
    {
        lock (_models)
        {
            _models[modelId] = (storedAt, files.ToDictionary(f => f.Path, f => f.Bytes));
        }
    }

    public void Remove(string modelId)
    {
        lock (_models)
        {
            _models.Remove(modelId);
        }
    }

    public Task<IReadOnlyList<StoredModel>> ListModelsAsync(CancellationToken cancellationToken)
    {
        lock (_models)
        {
            Listings++;
            IReadOnlyList<StoredModel> models = _models.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => new StoredModel(m.Key, StoredModelRole.Standalone, null,
                m.Value.Files.Select(f => new StoredModelFile(f.Key, f.Value.Length, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f.Value)), false, [])).ToList(),
                m.Value.Files.Sum(f => (long)f.Value.Length), 0, m.Value.StoredAt)).ToList();
            return Task.FromResult(models);
        }
    }

    public ValueTask<int> ReadFileAsync(string modelId, string path, string sha256, long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        lock (_models)
        {
            Reads.Add((modelId, path, offset, destination.Length));
            if (Damaged.Contains(modelId + "/" + path))
            {
                throw new StoreDamageException(ModelId.Parse(modelId), path, ContentHash.Of([1, 2, 3]), "a chunk does not match its checksum");
            }
            if (!_models.TryGetValue(modelId, out var model))
            {
                throw new KeyNotFoundException($"Model {modelId} is not stored.");
            }
            if (!model.Files.TryGetValue(path, out byte[]? bytes))
            {
                throw new FileNotFoundException($"Model {modelId} has no file {path}.", path);
            }
            if (Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)) != sha256)
            {
                throw new IOException($"{modelId}: {path} is stored with other bytes now.");
            }
            // Like the store, a read may return fewer bytes than asked before the end: at most 1000 here.
            int length = (int)Math.Clamp(Math.Min(bytes.Length - offset, Math.Min(destination.Length, 1000)), 0, int.MaxValue);
            bytes.AsSpan((int)Math.Min(offset, bytes.Length), length).CopyTo(destination.Span);
            return ValueTask.FromResult(length);
        }
    }
}
