namespace ZipLlm.Serve;

/// <summary>
/// The file paths a request may name. A path is only ever looked up among a model's files, never resolved against a
/// file system; still, what no model file can be called (<c>..</c>, absolute, backslashes, NUL and other control
/// characters, empty segments) is refused outright, so it cannot mean anything anywhere.
/// </summary>
public static class HubPaths
{
    /// <summary>Longest path accepted, in characters.</summary>
    public const int MaxLength = 4096;

    /// <summary>
    /// Turns the path of a URL (already percent-decoded by the server, but for <c>%2F</c>) into a model file path, or
    /// says why it is not one. An empty path is allowed only when <paramref name="allowEmpty"/> (a tree's root).
    /// </summary>
    public static bool TryNormalize(string? raw, bool allowEmpty, out string path, out string problem)
    {
        path = "";
        problem = "";
        string text = (raw ?? "").Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
        if (allowEmpty)
        {
            text = text.TrimEnd('/');
        }
        if (text.Length == 0)
        {
            problem = "the path is empty";
            return allowEmpty;
        }
        if (text.Length > MaxLength)
        {
            problem = $"the path is longer than {MaxLength} characters";
            return false;
        }
        foreach (char c in text)
        {
            if (char.IsControl(c) || c == '\\')
            {
                problem = "the path holds a control character or a backslash";
                return false;
            }
        }
        if (text[0] == '/' || text.Length >= 2 && char.IsAsciiLetter(text[0]) && text[1] == ':')
        {
            problem = "the path is absolute";
            return false;
        }
        foreach (string segment in text.Split('/'))
        {
            if (segment is "" or "." or "..")
            {
                problem = "the path has an empty, '.' or '..' segment";
                return false;
            }
        }
        path = text;
        return true;
    }
}
