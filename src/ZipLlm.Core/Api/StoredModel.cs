using ZipLlm.Domain;

namespace ZipLlm;

/// <summary>The part a model plays in its family, as the store holds it now.</summary>
public enum StoredModelRole
{
    /// <summary>Stored on its own, with no base, and no stored model is a finetune of it.</summary>
    Standalone,

    /// <summary>A base: stored as one, or some stored finetune's deltas are against its tensors.</summary>
    Base,

    /// <summary>A finetune, stored as deltas against <see cref="StoredModel.BaseId"/> where that was smaller.</summary>
    Finetune,
}

/// <summary>A model in a store.</summary>
/// <param name="Id">The model's id, <c>org/name</c>.</param>
/// <param name="Role">Its role in its family.</param>
/// <param name="BaseId">The base a finetune's tensors were paired with; null for any other model.</param>
/// <param name="Files">Every file of the model's folder, in the order recorded.</param>
/// <param name="OriginalBytes">Sum of the files' sizes: what a restore writes.</param>
/// <param name="AddedBytes">
/// Bytes of objects the model added to the store when it was stored: what it cost beyond what the store held already
/// (0 for a model whose every file or tensor was stored before).
/// </param>
/// <param name="StoredAt">When it was stored (UTC).</param>
/// <param name="Revision">The hub commit its files were (from the hub or a Hugging Face cache) when that was known; null otherwise.</param>
public sealed record StoredModel(
    string Id,
    StoredModelRole Role,
    string? BaseId,
    IReadOnlyList<StoredModelFile> Files,
    long OriginalBytes,
    long AddedBytes,
    DateTimeOffset StoredAt,
    string? Revision = null)
{
    /// <summary>Every tensor of every safetensors file of the model, file by file in data order.</summary>
    public IEnumerable<StoredModelTensor> Tensors => Files.SelectMany(f => f.Tensors);
}

/// <summary>A file of a stored model.</summary>
/// <param name="Path">Path inside the model folder, with <c>/</c> separators (<c>model-00001-of-00002.safetensors</c>, <c>config.json</c>).</param>
/// <param name="Length">Byte length.</param>
/// <param name="Sha256">The lowercase hex SHA-256 of the whole file (the id the Hugging Face hub lists for it).</param>
/// <param name="IsSafetensors">Whether it is stored as a safetensors file (its header and each tensor apart), rather than whole.</param>
/// <param name="Tensors">Its tensors in data order; empty for a file stored whole.</param>
public sealed record StoredModelFile(string Path, long Length, string Sha256, bool IsSafetensors, IReadOnlyList<StoredModelTensor> Tensors);

/// <summary>A tensor of a stored safetensors file.</summary>
/// <param name="FilePath">The file that holds it (<see cref="StoredModelFile.Path"/>).</param>
/// <param name="Name">Its name in the file's header.</param>
/// <param name="DType">Its dtype as safetensors writes it (<c>BF16</c>, <c>F32</c>, <c>I8</c> ...).</param>
/// <param name="Shape">Its dimensions; empty for a scalar.</param>
/// <param name="Length">Byte length of its data: what <see cref="ZipLlmStore.ReadTensor(string, string, Span{byte}, CancellationToken)"/> writes.</param>
public sealed record StoredModelTensor(string FilePath, string Name, string DType, IReadOnlyList<long> Shape, long Length);

/// <summary>Progress of a long operation: bytes done out of a total.</summary>
/// <param name="Item">What is being worked on: the model's id.</param>
/// <param name="DoneBytes">Bytes hashed and encoded (compress) or decoded and written (restore) so far.</param>
/// <param name="TotalBytes">Bytes in all.</param>
public readonly record struct ZipLlmProgress(string Item, long DoneBytes, long TotalBytes);

/// <summary>What <see cref="ZipLlmStore.CompressAsync"/> did.</summary>
/// <param name="ModelId">The model.</param>
/// <param name="Skipped">It was stored already, and nothing was done.</param>
/// <param name="OriginalBytes">Bytes of its files (0 when skipped).</param>
/// <param name="AddedBytes">Bytes of objects it added to the store.</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="DeltaTensors">Tensors stored as deltas against the base.</param>
/// <param name="DedupTensors">Tensors the store held already.</param>
public sealed record CompressSummary(string ModelId, bool Skipped, long OriginalBytes, long AddedBytes, TimeSpan Elapsed, int DeltaTensors, int DedupTensors)
{
    /// <summary>Original bytes per byte added; infinite when nothing new was stored.</summary>
    public double Ratio => AddedBytes == 0 ? double.PositiveInfinity : (double)OriginalBytes / AddedBytes;
}

/// <summary>What <see cref="ZipLlmStore.RestoreAsync"/> did.</summary>
/// <param name="ModelId">The model.</param>
/// <param name="Files">Files written, each checked against the hash recorded when it was stored.</param>
/// <param name="Bytes">Bytes written.</param>
/// <param name="Elapsed">Wall time, checks included.</param>
public sealed record RestoreSummary(string ModelId, int Files, long Bytes, TimeSpan Elapsed);

/// <summary>What <see cref="ZipLlmStore.VerifyAsync"/> found.</summary>
/// <param name="Models">Each model checked, in order of id, with its problems.</param>
/// <param name="DamagedManifests">One line for each manifest that cannot be read or does not check (verifying every model only).</param>
public sealed record VerifySummary(IReadOnlyList<VerifiedModel> Models, IReadOnlyList<string> DamagedManifests)
{
    /// <summary>Whether every model checked is intact and every manifest reads.</summary>
    public bool Intact => DamagedManifests.Count == 0 && Models.All(m => m.Intact);
}

/// <summary>One model as <see cref="ZipLlmStore.VerifyAsync"/> checked it.</summary>
/// <param name="ModelId">The model.</param>
/// <param name="Problems">One line per problem, naming the file and object to blame where one is; empty when the model is intact.</param>
public sealed record VerifiedModel(string ModelId, IReadOnlyList<string> Problems)
{
    /// <summary>Whether the model is intact.</summary>
    public bool Intact => Problems.Count == 0;
}
