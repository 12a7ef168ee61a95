using System.Diagnostics.CodeAnalysis;

namespace ZipLlm.Config;

/// <summary>
/// Hugging Face model ids (<c>org/name</c>) and the folders they live in. A folder name is derived
/// from an id, never the other way round: org names may themselves contain <c>_</c>.
/// </summary>
public static class ModelId
{
    /// <summary>Longest id accepted; the hub's own limit is 96 characters per part.</summary>
    public const int MaxLength = 200;

    /// <summary>Whether <paramref name="id"/> is <c>org/name</c> with exactly one <c>/</c>, non-empty parts and only <c>[A-Za-z0-9._-]</c>.</summary>
    public static bool IsValid([NotNullWhen(true)] string? id) => Validate(id) is null;

    /// <summary>Explains why <paramref name="id"/> is not a valid model id, or returns <see langword="null"/> when it is.</summary>
    public static string? Validate(string? id)
    {
        if (string.IsNullOrEmpty(id))
        {
            return "the model id is empty";
        }
        if (id.Length > MaxLength)
        {
            return $"the model id is longer than {MaxLength} characters";
        }
        int slash = id.IndexOf('/');
        if (slash < 0)
        {
            return $"\"{id}\" is not of the form org/name (no '/')";
        }
        if (id.IndexOf('/', slash + 1) >= 0)
        {
            return $"\"{id}\" has more than one '/'";
        }
        if (slash == 0 || slash == id.Length - 1)
        {
            return $"\"{id}\" has an empty org or name";
        }
        foreach (char c in id)
        {
            if (c != '/' && !IsIdChar(c))
            {
                return $"\"{id}\" contains the character '{c}' (allowed: letters, digits, '.', '_', '-')";
            }
        }
        // "." and ".." would name the parent or current folder once the id becomes a path.
        string org = id[..slash], name = id[(slash + 1)..];
        if (org is "." or ".." || name is "." or "..")
        {
            return $"\"{id}\" has an org or name of '.' or '..'";
        }
        return null;
    }

    /// <summary>Throws when <paramref name="id"/> is not a valid model id.</summary>
    /// <exception cref="ArgumentException"><paramref name="id"/> is not <c>org/name</c>.</exception>
    public static void ThrowIfInvalid(string? id, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(id))] string? paramName = null)
    {
        string? problem = Validate(id);
        if (problem is not null)
        {
            throw new ArgumentException($"Invalid model id: {problem}.", paramName);
        }
    }

    /// <summary>
    /// The folder name of a model: the first <c>/</c> becomes <c>_</c>
    /// (<c>"org/name"</c> gives <c>"org_name"</c>), as the original tool and its downloader do.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="id"/> is not a valid model id.</exception>
    public static string FolderName(string id)
    {
        ThrowIfInvalid(id);
        int slash = id.IndexOf('/');
        return string.Concat(id.AsSpan(0, slash), "_", id.AsSpan(slash + 1));
    }

    /// <summary>The folder holding model <paramref name="id"/>: <c>modelDir/org_name</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="id"/> is not a valid model id, or <paramref name="modelDir"/> is empty.</exception>
    public static string FolderPath(string modelDir, string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        return Path.Combine(modelDir, FolderName(id));
    }

    private static bool IsIdChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-';
}
