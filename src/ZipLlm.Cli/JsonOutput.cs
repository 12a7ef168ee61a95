using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using ZipLlm.Domain;
using ZipLlm.Jobs;

namespace ZipLlm.Cli;

/// <summary>
/// The <c>--json</c> documents of list, compress, restore and verify (schema: docs/json.md): one document on stdout,
/// snake_case names, sizes in bytes, ratios as numbers (null where nothing was added). Serialized through source
/// generation, as a Native AOT build needs (no reflection).
/// </summary>
internal static class JsonOutput
{
    /// <summary>Writes <paramref name="value"/> and a newline to <paramref name="output"/>.</summary>
    public static void Write<T>(TextWriter output, T value, JsonTypeInfo<T> type)
    {
        output.Write(JsonSerializer.Serialize(value, type));
        output.Write('\n');
    }
}

/// <summary><c>list --json</c>.</summary>
internal sealed record ListOutput(string Store, IReadOnlyList<ListedModel> Models, long OriginalBytes, long StoredBytes, double? Ratio, IReadOnlyList<string> DamagedManifests);

/// <summary>
/// One model of <see cref="ListOutput"/>; <c>chunks</c> is null for a model stored before codec format 3, <c>revision</c>
/// (the hub commit of its files) where it is not known.
/// </summary>
internal sealed record ListedModel(
    string Id, string Role, string? Base, int Files, long OriginalBytes, long AddedBytes, double? Ratio, bool Dedup, DateTimeOffset StoredAt,
    ChunkCountsOutput? Chunks, string? Revision);

/// <summary>How many of the chunks a model added were coded by each transform.</summary>
internal sealed record ChunkCountsOutput(long OrderedDifference, long Xor, long Solo);

/// <summary><c>compress --json</c>.</summary>
internal sealed record CompressOutput(
    IReadOnlyList<CompressedModel> Models, IReadOnlyList<CompressFailureOutput> Failures, int Stored, int Skipped, int Failed,
    long OriginalBytes, long AddedBytes, double? Ratio, double Seconds, int ExitCode);

/// <summary>One model of <see cref="CompressOutput"/>, stored now or skipped because it was stored before.</summary>
internal sealed record CompressedModel(
    string Id, bool Skipped, long OriginalBytes, long AddedBytes, double? Ratio, bool Dedup, double Seconds,
    int Files, int DedupFiles, int Tensors, int DedupTensors, int DeltaTensors, BaseChoiceOutput? BaseChoice);

/// <summary>
/// The base chosen for a model (<c>compress</c>, <c>bases</c>): <c>base</c> null to store it alone; estimates are bytes of its
/// floating tensors from the sample; <c>candidates</c> best first, <c>coded</c> telling a codec estimate from a quick one.
/// </summary>
internal sealed record BaseChoiceOutput(string Id, string? Base, int Depth, string? Hint, string? HintSource, long TensorBytes, long SoloBytes,
    long EstimatedBytes, string Reason, IReadOnlyList<CandidateOutput> Candidates);

/// <summary>One candidate base of <see cref="BaseChoiceOutput"/>.</summary>
internal sealed record CandidateOutput(string Id, int Depth, long EstimatedBytes, bool Coded);

/// <summary>The document <c>bases --json</c> prints.</summary>
internal sealed record BasesOutput(IReadOnlyList<BaseChoiceOutput> Models, IReadOnlyList<StoredBaseOutput> Stored, IReadOnlyList<CompressFailureOutput> Failures);

/// <summary>A listed model already stored, with the base it was stored against.</summary>
internal sealed record StoredBaseOutput(string Id, string? Base);

/// <summary>A model <c>compress</c> could not store: <c>kind</c> is <c>invalid_input</c> or <c>io</c>.</summary>
internal sealed record CompressFailureOutput(string Id, string Kind, string Error)
{
    /// <summary>The JSON of a model compress or bases could not handle.</summary>
    public static CompressFailureOutput Of(CompressFailure failure) =>
        new(failure.ModelId.ToString(), failure.Kind == CompressFailureKind.Io ? "io" : "invalid_input", failure.Error);
}

/// <summary><c>restore --json</c>: <c>check</c> is the hash every file was checked by, <c>xxh3-128</c> or <c>sha256</c>.</summary>
internal sealed record RestoreOutput(string Id, string Output, int Files, long Bytes, double Seconds, double BytesPerSecond, string Check);

/// <summary><c>verify --json</c>.</summary>
internal sealed record VerifyOutput(IReadOnlyList<VerifiedModel> Models, IReadOnlyList<string> DamagedManifests, bool Intact);

/// <summary>One model of <see cref="VerifyOutput"/>, with one line per problem (none when intact).</summary>
internal sealed record VerifiedModel(string Id, bool Intact, IReadOnlyList<string> Problems);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(ListOutput))]
[JsonSerializable(typeof(CompressOutput))]
[JsonSerializable(typeof(RestoreOutput))]
[JsonSerializable(typeof(VerifyOutput))]
[JsonSerializable(typeof(BasesOutput))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
