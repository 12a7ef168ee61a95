using System.Security.Cryptography;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Tests.TestSupport;

/// <summary>
/// Builds a Hugging Face cache by hand, as huggingface_hub writes one: <c>models--ORG--NAME/blobs/SHA256</c>,
/// <c>snapshots/COMMIT/PATH</c> as relative symlinks into <c>../../blobs</c> (one more <c>../</c> per folder),
/// <c>refs/REVISION</c> holding the commit without a newline, and a <c>.no_exist</c> marker.
/// </summary>
internal static class FakeHubCache
{
    /// <summary>Adds a snapshot of <paramref name="model"/> at <paramref name="commit"/>, pointed at by <paramref name="refName"/> (none when null).</summary>
    /// <returns>The snapshot folder.</returns>
    public static string AddSnapshot(string cacheDir, string model, string commit, IReadOnlyDictionary<string, byte[]> files, string? refName = "main")
    {
        string repo = RepoFolder(cacheDir, model);
        string blobs = Path.Combine(repo, "blobs");
        string snapshot = Path.Combine(repo, "snapshots", commit);
        Directory.CreateDirectory(blobs);
        foreach ((string path, byte[] content) in files)
        {
            string etag = Convert.ToHexStringLower(SHA256.HashData(content));
            File.WriteAllBytes(Path.Combine(blobs, etag), content);
            string link = Path.Combine(snapshot, path);
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            int depth = path.Count(c => c == '/');
            File.CreateSymbolicLink(link, string.Concat(Enumerable.Repeat("../", depth + 2)) + "blobs/" + etag);
        }
        Directory.CreateDirectory(Path.Combine(repo, ".no_exist", commit));
        File.WriteAllBytes(Path.Combine(repo, ".no_exist", commit, "model.safetensors.index.json"), []);
        if (refName is not null)
        {
            string refPath = Path.Combine(repo, "refs", refName);
            Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
            File.WriteAllText(refPath, commit);
        }
        return snapshot;
    }

    /// <summary>The cache folder of a model: <c>CACHE/models--ORG--NAME</c>.</summary>
    public static string RepoFolder(string cacheDir, string model) => Path.Combine(cacheDir, HubCache.FolderName(ModelId.Parse(model)));

    /// <summary>A commit id made from a word, for tests.</summary>
    public static string CommitOf(string word) => Convert.ToHexStringLower(SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(word)));
}
