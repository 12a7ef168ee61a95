using System.IO.Enumeration;

namespace ZipLlm.Hub;

/// <summary>
/// Which files of a repository a download takes, as <c>huggingface_hub</c>'s <c>allow_patterns</c> and
/// <c>ignore_patterns</c> choose them: a file is taken when it matches an include pattern (every file, when there
/// are none) and no exclude pattern. Patterns are globs over the whole path in the repository (<c>*</c> matches any
/// characters, '/' included; <c>?</c> one); one ending in '/' means everything in that folder.
/// </summary>
/// <remarks>
/// Without exclude patterns of its own, a selection skips the weights of other formats
/// (<see cref="OtherWeightPatterns"/>) when the repository has safetensors: they hold the same weights again
/// (a Llama repository's <c>original/consolidated.00.pth</c>, a <c>pytorch_model.bin</c> beside the safetensors).
/// Hidden paths (a part starting with '.', such as <c>.gitattributes</c>) and paths that could leave the model
/// folder are never taken.
/// </remarks>
internal sealed class HubFileSelection
{
    /// <summary>Weight formats other than safetensors, skipped by default where safetensors exist.</summary>
    public static readonly IReadOnlyList<string> OtherWeightPatterns = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.gguf", "*.onnx", "*.onnx_data", "*.h5", "*.msgpack", "*.ot", "*.tflite", "*.mlmodel"];

    /// <summary>Longest path taken (bytes of UTF-16 aside, far above any real repository's).</summary>
    public const int MaxPathLength = 1024;

    /// <summary>Every file a model needs: all of them but hidden ones, and other weight formats where safetensors exist.</summary>
    public static HubFileSelection Default { get; } = new([], null);

    /// <summary>Creates a selection.</summary>
    /// <param name="include">Patterns of files to take; empty takes every file.</param>
    /// <param name="exclude">Patterns of files to skip; <see langword="null"/> for the default (<see cref="OtherWeightPatterns"/> where safetensors exist).</param>
    /// <exception cref="ArgumentException">A pattern is empty.</exception>
    public HubFileSelection(IReadOnlyList<string> include, IReadOnlyList<string>? exclude)
    {
        ArgumentNullException.ThrowIfNull(include);
        if (include.Concat(exclude ?? []).Any(string.IsNullOrWhiteSpace))
        {
            throw new ArgumentException("A file pattern is empty.", nameof(include));
        }
        Include = include.Select(Normalize).ToList();
        Exclude = exclude?.Select(Normalize).ToList();
    }

    /// <summary>Include patterns; empty: every file.</summary>
    public IReadOnlyList<string> Include { get; }

    /// <summary>Exclude patterns; <see langword="null"/>: the default.</summary>
    public IReadOnlyList<string>? Exclude { get; }

    /// <summary>The files of <paramref name="listing"/> to download (paths as listed).</summary>
    public IReadOnlyList<HubFile> Select(IReadOnlyList<HubFile> listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        bool hasSafetensors = listing.Any(f => IsSafePath(f.Path) && IsSafetensors(f.Path));
        return listing.Where(f => Takes(f.Path, hasSafetensors)).ToList();
    }

    /// <summary>Whether <paramref name="path"/> is taken, in a repository that has safetensors or not.</summary>
    public bool Takes(string path, bool repositoryHasSafetensors)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!IsSafePath(path))
        {
            return false;
        }
        if (Include.Count > 0 && !Include.Any(p => Matches(p, path)))
        {
            return false;
        }
        IReadOnlyList<string> exclude = Exclude ?? (repositoryHasSafetensors ? OtherWeightPatterns : []);
        return !exclude.Any(p => Matches(p, path));
    }

    /// <summary>Whether <paramref name="path"/> names a safetensors file.</summary>
    public static bool IsSafetensors(string path) => path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A relative path a model folder can hold: '/'-separated parts, none empty, <c>.</c>, <c>..</c> or hidden
    /// (starting with '.'), no '\', ':' or NUL, not a download's own <c>.part</c> file.
    /// </summary>
    public static bool IsSafePath(string path)
    {
        if (path.Length == 0 || path.Length > MaxPathLength || path.IndexOfAny(['\\', ':', '\0']) >= 0
            || path.EndsWith(HubClient.PartialSuffix, StringComparison.Ordinal))
        {
            return false;
        }
        foreach (string part in path.Split('/'))
        {
            if (part.Length == 0 || part.Length > 255 || part[0] == '.')
            {
                return false;
            }
        }
        return true;
    }

    private static bool Matches(string pattern, string path) =>
        FileSystemName.MatchesSimpleExpression(pattern, path, ignoreCase: false);

    /// <summary>A pattern ending in '/' (a folder) means everything in it, as huggingface_hub reads it.</summary>
    private static string Normalize(string pattern)
    {
        pattern = pattern.Trim();
        return pattern.EndsWith('/') ? pattern + "*" : pattern;
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"include {(Include.Count == 0 ? "every file" : string.Join(' ', Include))}, exclude {(Exclude is null ? "other weight formats where safetensors exist" : Exclude.Count == 0 ? "nothing" : string.Join(' ', Exclude))}";
}
