using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;

namespace ZipLlm.Synthetic;

/// <summary>A tensor to write: its header entry and where its bytes come from.</summary>
internal sealed record PlannedTensor(string Name, DType DType, long[] Shape, TensorFill Fill)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
}

/// <summary>One file of a model folder, described well enough to write it or to check it is already there.</summary>
internal abstract record PlannedFile(string Name)
{
    /// <summary>Exact length of the finished file.</summary>
    public abstract long Length { get; }
}

/// <summary>A small file whose whole content is known up front (JSON, README).</summary>
internal sealed record SmallFile(string Name, byte[] Content) : PlannedFile(Name)
{
    public override long Length => Content.LongLength;
}

/// <summary>A safetensors shard: header plus tensors in data order.</summary>
internal sealed record ShardFile(string Name, SafetensorsHeader Header, IReadOnlyList<PlannedTensor> Tensors) : PlannedFile(Name)
{
    public override long Length => Header.FileLength;

    public static ShardFile Create(string name, IReadOnlyList<PlannedTensor> tensors, IReadOnlyDictionary<string, string>? metadata) =>
        new(name, SafetensorsHeader.Create(tensors.Select(t => (t.Name, t.DType, t.Shape)), metadata), tensors);
}

/// <summary>A file copied byte for byte from another model's folder (an exact re-upload).</summary>
internal sealed record CopiedFile(string Name, PlannedFile Source, string SourceFolder) : PlannedFile(Name)
{
    public override long Length => Source.Length;
}

/// <summary>Everything needed to write one model folder.</summary>
internal sealed record ModelPlan(ModelId Id, string Folder, IReadOnlyList<PlannedFile> Files)
{
    public long TotalBytes => Files.Sum(f => f.Length);
}
