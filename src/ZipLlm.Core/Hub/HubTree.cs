using System.Text.Json;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Hub;

/// <summary>
/// Reads one page of the hub's tree listing: a JSON array of entries with <c>type</c> and <c>path</c>;
/// a file's <c>size</c>, and either an <c>lfs</c> object (<c>oid</c>: SHA-256, 64 hex digits, and
/// <c>size</c>) or a git <c>oid</c> (SHA-1 blob id, 40 hex digits).
/// </summary>
internal static class HubTree
{
    /// <summary>Adds the files of <paramref name="body"/> (folders skipped) to <paramref name="files"/>.</summary>
    /// <exception cref="HubException">The page is not such an array (<see cref="HubErrorKind.Protocol"/>).</exception>
    public static void Parse(byte[] body, ModelId modelId, List<HubFile> files)
    {
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                throw new HubException(HubErrorKind.Protocol, $"{modelId}: the file listing is not a JSON array.");
            }
            foreach (JsonElement entry in document.RootElement.EnumerateArray())
            {
                if (entry.ValueKind != JsonValueKind.Object
                    || !entry.TryGetProperty("type", out JsonElement type) || type.ValueKind != JsonValueKind.String
                    || !entry.TryGetProperty("path", out JsonElement path) || path.ValueKind != JsonValueKind.String)
                {
                    throw new HubException(HubErrorKind.Protocol, $"{modelId}: a file listing entry lacks \"type\" or \"path\".");
                }
                if (type.GetString() != "file")
                {
                    continue;
                }
                string? sha256 = null, gitOid = null;
                long size;
                if (entry.TryGetProperty("lfs", out JsonElement lfs) && lfs.ValueKind == JsonValueKind.Object)
                {
                    sha256 = RequireHex(lfs, "oid", 64, modelId);
                    size = RequireSize(lfs, modelId);
                }
                else
                {
                    size = RequireSize(entry, modelId);
                    gitOid = entry.TryGetProperty("oid", out JsonElement oid) && oid.ValueKind == JsonValueKind.String ? RequireHex(entry, "oid", 40, modelId) : null;
                }
                files.Add(new HubFile(path.GetString()!, size, sha256, gitOid));
            }
        }
        catch (JsonException ex)
        {
            throw new HubException(HubErrorKind.Protocol, $"{modelId}: the file listing is not valid JSON: {ex.Message}", null, ex);
        }
    }

    private static long RequireSize(JsonElement element, ModelId modelId) =>
        // Kind first: TryGetInt64 throws, rather than answers false, on a value that is not a number.
        element.TryGetProperty("size", out JsonElement size) && size.ValueKind == JsonValueKind.Number && size.TryGetInt64(out long value) && value >= 0
            ? value
            : throw new HubException(HubErrorKind.Protocol, $"{modelId}: a file listing entry has no valid \"size\".");

    private static string RequireHex(JsonElement element, string name, int length, ModelId modelId)
    {
        string? value = element.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
        if (value is null || value.Length != length || !value.All(char.IsAsciiHexDigit))
        {
            throw new HubException(HubErrorKind.Protocol, $"{modelId}: a file listing entry has an invalid \"{name}\".");
        }
        return value.ToLowerInvariant();
    }
}
