using System.Globalization;
using System.Text.Json.Serialization;
using ZipLlm.Domain;

namespace ZipLlm.Serve;

/// <summary>A model as <c>/api/models</c> and <c>/api/models/{org}/{name}</c> answer it (huggingface_hub's <c>ModelInfo</c>).</summary>
internal sealed class ModelInfoJson
{
    [JsonPropertyName("_id")] public required string InternalId { get; init; }
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("modelId")] public required string ModelId { get; init; }
    [JsonPropertyName("author")] public required string Author { get; init; }
    [JsonPropertyName("sha")] public required string Sha { get; init; }
    [JsonPropertyName("lastModified")] public required string LastModified { get; init; }
    [JsonPropertyName("createdAt")] public required string CreatedAt { get; init; }
    [JsonPropertyName("private")] public bool Private { get; init; }
    [JsonPropertyName("disabled")] public bool Disabled { get; init; }
    [JsonPropertyName("gated")] public bool Gated { get; init; }
    [JsonPropertyName("downloads")] public long Downloads { get; init; }
    [JsonPropertyName("likes")] public long Likes { get; init; }
    [JsonPropertyName("tags")] public IReadOnlyList<string> Tags { get; init; } = [];
    [JsonPropertyName("usedStorage")] public long? UsedStorage { get; init; }
    [JsonPropertyName("siblings")] public IReadOnlyList<SiblingJson>? Siblings { get; init; }
}

/// <summary>A file in a model's <c>siblings</c>.</summary>
internal sealed class SiblingJson
{
    [JsonPropertyName("rfilename")] public required string RFilename { get; init; }
    [JsonPropertyName("size")] public long Size { get; init; }
    [JsonPropertyName("blobId")] public required string BlobId { get; init; }
    [JsonPropertyName("lfs")] public SiblingLfsJson? Lfs { get; init; }
}

/// <summary>A sibling's LFS facts (huggingface_hub's <c>BlobLfsInfo</c>).</summary>
internal sealed class SiblingLfsJson
{
    [JsonPropertyName("sha256")] public required string Sha256 { get; init; }
    [JsonPropertyName("size")] public long Size { get; init; }
    [JsonPropertyName("pointerSize")] public long PointerSize { get; init; }
}

/// <summary>An entry of <c>/tree</c> and <c>/paths-info</c>: a file or a directory.</summary>
internal sealed class TreeEntryJson
{
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("oid")] public required string Oid { get; init; }
    [JsonPropertyName("size")] public long Size { get; init; }
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("lfs")] public TreeLfsJson? Lfs { get; init; }
    [JsonPropertyName("lastCommit")] public LastCommitJson? LastCommit { get; init; }
}

/// <summary>A tree entry's LFS facts.</summary>
internal sealed class TreeLfsJson
{
    [JsonPropertyName("oid")] public required string Oid { get; init; }
    [JsonPropertyName("size")] public long Size { get; init; }
    [JsonPropertyName("pointerSize")] public long PointerSize { get; init; }
}

/// <summary>The commit that last touched an entry (the model's one commit).</summary>
internal sealed class LastCommitJson
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("title")] public required string Title { get; init; }
    [JsonPropertyName("date")] public required string Date { get; init; }
}

/// <summary>The body of <c>POST /paths-info</c> sent as JSON.</summary>
internal sealed class PathsInfoRequestJson
{
    [JsonPropertyName("paths")] public List<string>? Paths { get; init; }
    [JsonPropertyName("expand")] public bool? Expand { get; init; }
}

/// <summary>An error body, as the hub writes it.</summary>
internal sealed class ErrorJson
{
    [JsonPropertyName("error")] public required string Error { get; init; }
}

/// <summary>The serializers of the hub's JSON, generated at build time (the CLI is published with native AOT).</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ModelInfoJson))]
[JsonSerializable(typeof(List<ModelInfoJson>))]
[JsonSerializable(typeof(List<TreeEntryJson>))]
[JsonSerializable(typeof(PathsInfoRequestJson))]
[JsonSerializable(typeof(ErrorJson))]
internal sealed partial class HubJsonContext : JsonSerializerContext;

/// <summary>Dates as the hub writes them (<c>2024-05-01T12:34:56.000Z</c>), which huggingface_hub's parser expects.</summary>
internal static class HubDates
{
    public static string Format(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>An HTTP date (<c>Last-Modified</c>).</summary>
    public static string Http(DateTimeOffset value) => value.ToUniversalTime().ToString("R", CultureInfo.InvariantCulture);
}
