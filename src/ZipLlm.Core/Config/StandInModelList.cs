using System.Security.Cryptography;

namespace ZipLlm.Config;

/// <summary>Which model list a verb reads: the configured one, or a stand-in for it.</summary>
/// <param name="Path">The list to read.</param>
/// <param name="StandInReason">
/// Why a stand-in is read instead of the configured list (as setup recorded it); <see langword="null"/> when
/// <paramref name="Path"/> is the configured list.
/// </param>
/// <param name="StaleStandIn">A stand-in that was not used because the configured list changed since it was written.</param>
internal sealed record ModelListChoice(string Path, string? StandInReason, string? StaleStandIn = null)
{
    /// <summary>Whether <see cref="Path"/> is a stand-in rather than the configured list.</summary>
    public bool IsStandIn => StandInReason is not null;
}

/// <summary>
/// A model list that stands in for the configured <c>models_to_process</c> without touching it: setup writes one
/// beside the models (<c>model_dir/synthetic_models.txt</c>, generated, never tracked) when it makes the synthetic
/// family instead of downloading, and every verb that reads the list reads the stand-in instead, for as long as the
/// configured list is byte for byte the one it stood in for. A setup that downloads the configured list deletes it.
/// </summary>
/// <remarks>
/// The stand-in is an ordinary model list whose header comment records the configured list's full path and SHA-256
/// ("missing" when there was none) and the reason, so a list edited since, or another config's list that shares the
/// model folder, is never silently replaced.
/// </remarks>
internal static class StandInModelList
{
    /// <summary>File name of the stand-in, in <c>model_dir</c>.</summary>
    public const string FileName = "synthetic_models.txt";

    /// <summary>First line of a stand-in list.</summary>
    public const string Marker = "# zipllm stand-in model list";

    private const string ForField = "# stands in for: ";
    private const string HashField = "# stands in for sha256: ";
    private const string ReasonField = "# reason: ";
    private const string MissingHash = "missing";

    /// <summary>Where the stand-in for <paramref name="config"/>'s list is written.</summary>
    public static string PathFor(ZipLlmConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Path.Combine(config.ModelDir, FileName);
    }

    /// <summary>Writes <paramref name="list"/> as the stand-in for <paramref name="config"/>'s model list (atomically); returns its path.</summary>
    /// <param name="config">The config whose <c>models_to_process</c> it stands in for, as that file is now.</param>
    /// <param name="list">The models to read instead.</param>
    /// <param name="reason">One line: why (recorded, and logged by every verb that reads the stand-in).</param>
    /// <param name="description">Further comment lines.</param>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static string Write(ZipLlmConfig config, ModelList list, string reason, IEnumerable<string>? description = null)
    {
        ArgumentNullException.ThrowIfNull(list);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        string path = PathFor(config);
        Directory.CreateDirectory(config.ModelDir);
        list.Save(path,
        [
            Marker,
            ForField + config.ModelsToProcess,
            HashField + HashOf(config.ModelsToProcess),
            ReasonField + OneLine(reason),
            .. description ?? [],
            $"While {config.ModelsToProcess} is unchanged, verbs read this list instead of it;",
            "a 'zipllm models setup' that downloads that list deletes this file.",
        ]);
        return path;
    }

    /// <summary>Deletes the stand-in of <paramref name="config"/>'s list; whether there was one.</summary>
    /// <exception cref="IOException">The file exists and cannot be deleted.</exception>
    public static bool Delete(ZipLlmConfig config)
    {
        string path = PathFor(config);
        if (!File.Exists(path) || !IsStandIn(path))
        {
            return false;
        }
        File.Delete(path);
        return true;
    }

    /// <summary>The list <paramref name="config"/>'s verbs read: its stand-in while that applies, else <c>models_to_process</c>.</summary>
    /// <exception cref="IOException">The stand-in exists and cannot be read.</exception>
    public static ModelListChoice Resolve(ZipLlmConfig config)
    {
        string path = PathFor(config);
        var configured = new ModelListChoice(config.ModelsToProcess, null);
        if (!File.Exists(path))
        {
            return configured;
        }
        string? standsInFor = null, hash = null, reason = null;
        bool first = true;
        foreach (string line in File.ReadLines(path))
        {
            if (first)
            {
                if (line.TrimStart('\uFEFF').TrimEnd() != Marker)
                {
                    return configured;
                }
                first = false;
            }
            else if (!line.StartsWith('#'))
            {
                break;
            }
            standsInFor ??= Field(line, ForField);
            hash ??= Field(line, HashField);
            reason ??= Field(line, ReasonField);
        }
        if (standsInFor != config.ModelsToProcess || hash is null || reason is null)
        {
            return configured;
        }
        return hash == HashOf(config.ModelsToProcess) ? new ModelListChoice(path, reason) : configured with { StaleStandIn = path };
    }

    private static bool IsStandIn(string path)
    {
        using var reader = new StreamReader(path);
        return reader.ReadLine()?.TrimStart('\uFEFF').TrimEnd() == Marker;
    }

    private static string? Field(string line, string prefix) => line.StartsWith(prefix, StringComparison.Ordinal) ? line[prefix.Length..].TrimEnd() : null;

    private static string HashOf(string path)
    {
        if (!File.Exists(path))
        {
            return MissingHash;
        }
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
