using System.Text.Json;
using System.Text.Json.Nodes;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;

namespace ZipLlm.Tests.TestSupport;

/// <summary>
/// Edits a stored manifest as its JSON and seals it again with a fresh checksum: how tests make a manifest that
/// checks but says something else (a wrong hash, a missing field), to see what restore and verify do with it.
/// </summary>
internal static class ManifestEdits
{
    public static void Rewrite(ModelStore store, ModelId modelId, Action<JsonObject> change)
    {
        string path = store.Layout.ManifestPath(modelId);
        JsonObject manifest = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        change(manifest);
        manifest.Remove("checksum");
        Manifest parsed = JsonSerializer.Deserialize(manifest.ToJsonString(), ManifestJsonContext.Default.Manifest)!;
        File.WriteAllBytes(path, parsed.Sealed().ToJson());
    }

    public static void RewriteFiles(ModelStore store, ModelId modelId, Action<JsonObject> change) =>
        Rewrite(store, modelId, manifest =>
        {
            foreach (JsonNode? file in manifest["files"]!.AsArray())
            {
                change(file!.AsObject());
            }
        });
}
