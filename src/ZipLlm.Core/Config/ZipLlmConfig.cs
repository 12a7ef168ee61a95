using System.Text.Json;
using ZipLlm.Codecs;
using ZipLlm.Domain;
using ZipLlm.Store.Backends;

namespace ZipLlm.Config;

/// <summary>
/// The settings every verb reads from <c>config.json</c>. Every relative path is resolved against
/// the folder holding the config file, never the working directory; a missing, mistyped or
/// unknown field is an error naming the field, never a silent default.
/// </summary>
internal sealed class ZipLlmConfig
{
    /// <summary>JSON field: folder holding one sub-folder per model.</summary>
    public const string ModelDirField = "model_dir";

    /// <summary>JSON field: folder of the store.</summary>
    public const string StorageDirField = "storage_dir";

    /// <summary>JSON field: the list of model ids (<c>test_models.txt</c>).</summary>
    public const string ModelsToProcessField = "models_to_process";

    /// <summary>JSON field: the base-to-finetunes map (<c>base_ft.json</c>).</summary>
    public const string BaseFtPathField = "base_ft_path";

    /// <summary>JSON field (optional): worker threads, 1 to <see cref="MaxThreads"/>; all cores when absent.</summary>
    public const string ThreadsField = "threads";

    /// <summary>Most worker threads a config (or a command line) may ask for: <see cref="WorkerPool.MaxThreads"/>.</summary>
    public const int MaxThreads = WorkerPool.MaxThreads;

    /// <summary>A config file is a few hundred bytes; anything past this is not one.</summary>
    public const int MaxFileSize = 1 << 20;

    private static readonly string[] s_requiredPaths = [ModelDirField, StorageDirField, ModelsToProcessField, BaseFtPathField];

    /// <summary>Creates a config from already-resolved values (for tests and tools that build one in code).</summary>
    /// <exception cref="ArgumentException">A path is empty or <paramref name="threads"/> is not between 1 and <see cref="MaxThreads"/>.</exception>
    public ZipLlmConfig(string configPath, string modelDir, string storageDir, string modelsToProcess, string baseFtPath, int threads)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        ArgumentException.ThrowIfNullOrEmpty(storageDir);
        ArgumentException.ThrowIfNullOrEmpty(modelsToProcess);
        ArgumentException.ThrowIfNullOrEmpty(baseFtPath);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threads, MaxThreads);
        ConfigPath = Path.GetFullPath(configPath);
        string root = Path.GetDirectoryName(ConfigPath)!;
        ModelDir = Path.GetFullPath(modelDir, root);
        // A bucket (s3://BUCKET/PREFIX) is a URL, not a path: it is kept as written.
        StorageDir = S3Location.IsS3(storageDir) ? storageDir : Path.GetFullPath(storageDir, root);
        ModelsToProcess = Path.GetFullPath(modelsToProcess, root);
        BaseFtPath = Path.GetFullPath(baseFtPath, root);
        Threads = threads;
    }

    /// <summary>Absolute path of the config file itself.</summary>
    public string ConfigPath { get; }

    /// <summary>Absolute path of the folder holding one sub-folder per model.</summary>
    public string ModelDir { get; }

    /// <summary>Absolute path of the store, or its <c>s3://BUCKET/PREFIX</c> URL.</summary>
    public string StorageDir { get; }

    /// <summary>Absolute path of the model list (<c>test_models.txt</c>).</summary>
    public string ModelsToProcess { get; }

    /// <summary>Absolute path of <c>base_ft.json</c>.</summary>
    public string BaseFtPath { get; }

    /// <summary>Worker threads: the config's <c>threads</c>, or <see cref="WorkerPool.DefaultThreads"/> (all cores) when absent.</summary>
    public int Threads { get; }

    /// <summary>This config with its thread count replaced (a command line's --threads).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is not between 1 and <see cref="MaxThreads"/>.</exception>
    public ZipLlmConfig WithThreads(int threads) => new(ConfigPath, ModelDir, StorageDir, ModelsToProcess, BaseFtPath, threads);

    /// <summary>The folder of model <paramref name="modelId"/>: <c>model_dir/org_name</c>.</summary>
    /// <exception cref="InvalidOperationException"><paramref name="modelId"/> is <c>default(ModelId)</c>.</exception>
    public string ModelFolder(ModelId modelId) => modelId.FolderPath(ModelDir);

    /// <summary>Whether <c>model_dir</c> is a Hugging Face cache (it holds <c>models--*</c> folders; see <see cref="HubCache"/>).</summary>
    public bool ModelDirIsHubCache => HubCache.IsCache(ModelDir);

    /// <summary>Whether <c>model_dir</c> has the model at all: its plain folder, or its folder in a Hugging Face cache.</summary>
    public bool HasModel(ModelId modelId) => HubCache.Holds(ModelDir, modelId) || Directory.Exists(ModelFolder(modelId));

    /// <summary>
    /// The folder holding <paramref name="modelId"/>'s files, without checking them (to read a model card, say): its
    /// cache snapshot when the cache has one for <paramref name="revision"/>, else <c>model_dir/org_name</c>.
    /// </summary>
    public string ModelFolderFor(ModelId modelId, string? revision = null) =>
        HubCache.Locate(ModelDir, modelId, revision) ?? ModelFolder(modelId);

    /// <summary>
    /// Where <paramref name="modelId"/>'s files are: in a Hugging Face cache (<c>model_dir/models--ORG--NAME</c>
    /// exists), the snapshot of <paramref name="revision"/> (default <c>main</c>), checked; otherwise the plain folder
    /// <c>model_dir/org_name</c>, with the commit setup recorded for it, if any.
    /// </summary>
    /// <exception cref="InvalidDataException">The cache's ref or snapshot is missing, or a link of the snapshot is dangling or leads out of the model's cache folder.</exception>
    /// <exception cref="ArgumentException"><paramref name="revision"/> is not a valid revision.</exception>
    public ModelSource ResolveModel(ModelId modelId, string? revision = null)
    {
        if (HubCache.Holds(ModelDir, modelId))
        {
            HubCacheSnapshot snapshot = HubCache.Resolve(ModelDir, modelId, revision);
            return new ModelSource(modelId, snapshot.Folder, snapshot.Commit, FromCache: true);
        }
        return new ModelSource(modelId, ModelFolder(modelId), DownloadRecord.Read(ModelDir, modelId), FromCache: false);
    }

    /// <summary>Reads and validates <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// The file is not a regular file (a folder, a FIFO, a device) or is larger than <see cref="MaxFileSize"/>, is not JSON, is not an object, or has a missing, mistyped, empty or unknown field;
    /// the message names the file and the field.
    /// </exception>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    public static ZipLlmConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        byte[] bytes = InputFile.ReadAll(fullPath, MaxFileSize, "config file");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(InputFile.WithoutByteOrderMark(bytes), new JsonDocumentOptions { MaxDepth = 4 });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{fullPath}: not valid JSON: {ex.Message}", ex);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{fullPath}: the config must be a JSON object, not {Describe(root.ValueKind)}.");
            }

            var paths = new Dictionary<string, string>(StringComparer.Ordinal);
            int? threads = null;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                {
                    throw Error(fullPath, property.Name, "appears twice");
                }
                if (property.Name == ThreadsField)
                {
                    threads = ReadThreads(fullPath, property.Value);
                }
                else if (Array.IndexOf(s_requiredPaths, property.Name) >= 0)
                {
                    if (property.Value.ValueKind != JsonValueKind.String)
                    {
                        throw Error(fullPath, property.Name, $"must be a string (a path), not {Describe(property.Value.ValueKind)}");
                    }
                    string value = property.Value.GetString()!;
                    if (string.IsNullOrWhiteSpace(value))
                    {
                        throw Error(fullPath, property.Name, "is empty");
                    }
                    if (value.Contains('\0'))
                    {
                        throw Error(fullPath, property.Name, "contains a NUL character");
                    }
                    if (property.Name == StorageDirField && S3Location.IsS3(value))
                    {
                        try
                        {
                            S3Location.Parse(value);
                        }
                        catch (ArgumentException ex)
                        {
                            // The file is wrong, not the command line: exit 3, not 2.
                            throw Error(fullPath, property.Name, $"is not a store's URL: {ex.Message.Replace($" (Parameter '{ex.ParamName}')", "", StringComparison.Ordinal)}");
                        }
                    }
                    paths[property.Name] = value;
                }
                else
                {
                    throw new InvalidDataException(
                        $"{fullPath}: unknown field \"{property.Name}\" (expected {string.Join(", ", s_requiredPaths)} and optionally {ThreadsField}).");
                }
            }
            foreach (string field in s_requiredPaths)
            {
                if (!paths.ContainsKey(field))
                {
                    throw Error(fullPath, field, "is missing");
                }
            }

            var config = new ZipLlmConfig(
                fullPath,
                paths[ModelDirField],
                paths[StorageDirField],
                paths[ModelsToProcessField],
                paths[BaseFtPathField],
                threads ?? WorkerPool.DefaultThreads);
            RefuseStoreAmongModels(config);
            return config;
        }
    }

    /// <summary>
    /// Refuses a store folder that is <c>model_dir</c> itself, lies inside a model's folder (one holding safetensors, or
    /// a Hugging Face cache's <c>models--*</c>), or holds <c>model_dir</c>: compress would read the store it writes as
    /// the model's files, or write into the models. Checked before anything is written.
    /// </summary>
    private static void RefuseStoreAmongModels(ZipLlmConfig config)
    {
        if (S3Location.IsS3(config.StorageDir))
        {
            return;
        }
        string store = Path.TrimEndingDirectorySeparator(config.StorageDir);
        string models = Path.TrimEndingDirectorySeparator(config.ModelDir);
        if (store == models)
        {
            throw Error(config.ConfigPath, StorageDirField, $"({store}) is model_dir itself; keep models and the store apart");
        }
        if (IsWithin(models, store))
        {
            throw Error(config.ConfigPath, ModelDirField, $"({models}) lies inside the store ({store}); keep models and the store apart");
        }
        if (!IsWithin(store, models))
        {
            return;
        }
        string first = Path.GetRelativePath(models, store).Split(Path.DirectorySeparatorChar)[0];
        string folder = Path.Combine(models, first);
        bool modelFolder = first.StartsWith(HubCache.ModelPrefix, StringComparison.Ordinal)
            || (Directory.Exists(folder) && Directory.EnumerateFiles(folder, "*.safetensors", SearchOption.TopDirectoryOnly).Any());
        if (modelFolder)
        {
            throw Error(config.ConfigPath, StorageDirField,
                $"({store}) lies inside the model folder {folder}; compress would read the store as the model's files. Keep it outside");
        }
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or lies below it (both absolute, without a trailing separator).</summary>
    private static bool IsWithin(string path, string folder) =>
        path == folder || path.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static int ReadThreads(string fullPath, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Number)
        {
            throw Error(fullPath, ThreadsField, $"must be an integer from 1 to {MaxThreads}, not {Describe(value.ValueKind)}");
        }
        if (!value.TryGetInt32(out int threads) || threads is <= 0 or > MaxThreads)
        {
            throw Error(fullPath, ThreadsField, $"must be an integer from 1 to {MaxThreads}, not {value.GetRawText()}");
        }
        return threads;
    }

    private static InvalidDataException Error(string fullPath, string field, string problem) =>
        new($"{fullPath}: field \"{field}\" {problem}.");

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };
}
