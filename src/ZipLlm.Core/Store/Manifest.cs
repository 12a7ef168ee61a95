using System.Text.Json;
using System.Text.Json.Serialization;
using ZipLlm.Config;

namespace ZipLlm.Store;

/// <summary>How a file of a model is stored.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<StoredFileKind>))]
public enum StoredFileKind
{
    /// <summary>The whole file is one object.</summary>
    Blob,
    /// <summary>A safetensors file: its header is one object and each tensor another.</summary>
    Safetensors,
}

/// <summary>One tensor of a stored safetensors file, in data order.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Its dtype as the header writes it.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Object">SHA-256 of its bytes: the object holding it.</param>
/// <param name="Encoding">"solo", "delta" or "dedup" (already stored); informational.</param>
public sealed record StoredTensor(string Name, string DType, long[] Shape, string Object, string Encoding);

/// <summary>One file of a stored model.</summary>
/// <param name="Path">Path inside the model folder, with '/' separators.</param>
/// <param name="Size">Byte length.</param>
/// <param name="Sha256">SHA-256 of the whole file: its identity (re-uploads are found by it); <c>verify</c> checks it.</param>
/// <param name="Kind">Blob or safetensors.</param>
/// <param name="Object">For a blob: the object holding the file. For safetensors: the object holding the header.</param>
/// <param name="Tensors">For safetensors: the tensors in data order.</param>
/// <param name="Xxh128">
/// XXH3-128 of the whole file, which restore checks (SHA-256 with <c>--sha256</c>); absent from manifests
/// written before it was recorded, whose files restore checks by SHA-256.
/// </param>
public sealed record StoredFile(string Path, long Size, string Sha256, StoredFileKind Kind, string Object, StoredTensor[]? Tensors, string? Xxh128 = null);

/// <summary>
/// A stored model: written last and atomically, after all its objects, so a model is in the store
/// exactly when its manifest is.
/// </summary>
/// <param name="Format">Store format version.</param>
/// <param name="Id">The model id (<c>org/name</c>), as written in the model list.</param>
/// <param name="Role">Base, finetune or standalone.</param>
/// <param name="BaseId">A finetune's base, when it was paired with one.</param>
/// <param name="Files">Every file of the model folder.</param>
/// <param name="Objects">Every object needed to restore the model, including the bases of deltas, transitively.</param>
/// <param name="OriginalBytes">Sum of the files' sizes.</param>
/// <param name="AddedBytes">Bytes of objects this model added to the store when it was ingested.</param>
/// <param name="StoredAt">When the model was stored (UTC).</param>
public sealed record Manifest(
    int Format,
    string Id,
    ModelRoleKind Role,
    string? BaseId,
    StoredFile[] Files,
    string[] Objects,
    long OriginalBytes,
    long AddedBytes,
    DateTimeOffset StoredAt)
{
    /// <summary>Serializes the manifest as JSON.</summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, ManifestJsonContext.Default.Manifest);

    /// <summary>Parses and validates a manifest.</summary>
    /// <exception cref="InvalidDataException">The JSON is malformed or names something invalid.</exception>
    /// <exception cref="NotSupportedException">The manifest is of a newer format.</exception>
    public static Manifest Parse(ReadOnlySpan<byte> json, string source)
    {
        Manifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(json, ManifestJsonContext.Default.Manifest);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{source}: manifest is not valid JSON: {ex.Message}", ex);
        }
        if (manifest is null || manifest.Files is null || manifest.Objects is null || manifest.Id is null)
        {
            throw new InvalidDataException($"{source}: manifest is missing required fields.");
        }
        if (manifest.Format != StoreLayout.FormatVersion)
        {
            throw new NotSupportedException($"{source}: manifest format {manifest.Format} is not supported (this build reads {StoreLayout.FormatVersion}).");
        }
        if (!ModelId.IsValid(manifest.Id))
        {
            throw new InvalidDataException($"{source}: manifest names an invalid model id \"{manifest.Id}\".");
        }
        foreach (StoredFile file in manifest.Files)
        {
            if (file is null || !StoredPaths.IsSafe(file.Path) || file.Size < 0 || !ContentHash.TryParse(file.Sha256, out _) || !ContentHash.TryParse(file.Object, out _)
                || (file.Xxh128 is not null && !FileDigest.IsXxh128(file.Xxh128)))
            {
                throw new InvalidDataException($"{source}: manifest has an invalid file entry \"{file?.Path}\".");
            }
            if (file.Kind == StoredFileKind.Safetensors && (file.Tensors is null || file.Tensors.Any(t => t is null || !ContentHash.TryParse(t.Object, out _))))
            {
                throw new InvalidDataException($"{source}: manifest has an invalid tensor list for \"{file.Path}\".");
            }
        }
        if (manifest.Objects.Any(o => !ContentHash.TryParse(o, out _)))
        {
            throw new InvalidDataException($"{source}: manifest lists an invalid object name.");
        }
        return manifest;
    }
}

/// <summary>Rules for paths of files inside a model folder as the store records them.</summary>
public static class StoredPaths
{
    /// <summary>
    /// Whether <paramref name="path"/> is relative, uses '/' separators, and never leaves the
    /// folder (no empty, '.' or '..' segments): a manifest may have been tampered with.
    /// </summary>
    public static bool IsSafe(string? path)
    {
        if (string.IsNullOrEmpty(path) || path.Contains('\\') || path.Contains('\0') || path.StartsWith('/'))
        {
            return false;
        }
        foreach (string segment in path.Split('/'))
        {
            if (segment is "" or "." or "..")
            {
                return false;
            }
        }
        return true;
    }
}

/// <summary>
/// Manifest JSON, generated at build time: every verb reads manifests first, and reflection-based
/// serialization cost about a tenth of a second of start-up in a process that lives about one second.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    MaxDepth = 16,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(Manifest))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;
