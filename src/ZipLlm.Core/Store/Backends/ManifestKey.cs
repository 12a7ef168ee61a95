using ZipLlm.Domain;

namespace ZipLlm.Store.Backends;

/// <summary>The key a model's manifest is stored under: <c>org/name.json</c> (one folder, or prefix, per org, so ids never collide).</summary>
internal static class ManifestKey
{
    /// <summary>The key of <paramref name="modelId"/>'s manifest.</summary>
    public static string Of(ModelId modelId) => modelId.ToString() + ".json";
}
