using ZipLlm.Domain;
using ZipLlm.IO;

namespace ZipLlm.Config;

/// <summary>Where a model's files are read from, and the hub commit they are when that is known.</summary>
/// <param name="ModelId">The model.</param>
/// <param name="Folder">The folder to ingest: <c>model_dir/org_name</c>, or a snapshot of a Hugging Face cache.</param>
/// <param name="Commit">
/// The hub commit the files are: a cache snapshot's, or the one <c>models setup</c> recorded when it downloaded the
/// folder (<see cref="DownloadRecord"/>); <see langword="null"/> when unknown.
/// </param>
/// <param name="FromCache">Whether <paramref name="Folder"/> is a snapshot of a Hugging Face cache.</param>
internal sealed record ModelSource(ModelId ModelId, string Folder, string? Commit, bool FromCache);

/// <summary>
/// The commit <c>models setup</c> downloaded into a plain model folder, kept beside the folders in
/// <c>model_dir/.zipllm/org_name.commit</c> (never in the model's folder, whose every file is stored), and read back by
/// compress to record it in the manifest. A cache snapshot needs none: its folder name is its commit.
/// </summary>
internal static class DownloadRecord
{
    /// <summary>Folder of the records, in <c>model_dir</c>.</summary>
    public const string FolderName = ".zipllm";

    /// <summary>Suffix of a record's file name.</summary>
    public const string Suffix = ".commit";

    /// <summary>Where the record of <paramref name="modelId"/> is kept.</summary>
    public static string PathFor(string modelDir, ModelId modelId) => Path.Combine(modelDir, FolderName, modelId.FolderName + Suffix);

    /// <summary>Records that <paramref name="modelId"/>'s folder holds <paramref name="commit"/> (atomically).</summary>
    /// <exception cref="ArgumentException"><paramref name="commit"/> is not a commit id.</exception>
    /// <exception cref="IOException">The record cannot be written.</exception>
    public static void Write(string modelDir, ModelId modelId, string commit)
    {
        if (!HubRevision.IsCommit(commit))
        {
            throw new ArgumentException($"\"{commit}\" is not a commit id.", nameof(commit));
        }
        string path = PathFor(modelDir, modelId);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, commit.ToLowerInvariant() + "\n");
    }

    /// <summary>Forgets the commit of <paramref name="modelId"/>'s folder (its files are about to change).</summary>
    /// <exception cref="IOException">The record exists and cannot be deleted.</exception>
    public static void Delete(string modelDir, ModelId modelId)
    {
        string path = PathFor(modelDir, modelId);
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }

    /// <summary>The recorded commit of <paramref name="modelId"/>'s folder; <see langword="null"/> when none (or not a commit id).</summary>
    public static string? Read(string modelDir, ModelId modelId)
    {
        string path = PathFor(modelDir, modelId);
        try
        {
            if (!File.Exists(path))
            {
                return null;
            }
            string text = System.Text.Encoding.UTF8.GetString(InputFile.ReadAll(path, HubCache.MaxRefFileSize, "download record")).Trim();
            return HubRevision.IsCommit(text) ? text.ToLowerInvariant() : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            return null;
        }
    }
}
