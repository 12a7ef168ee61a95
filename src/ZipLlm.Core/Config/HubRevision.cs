namespace ZipLlm.Config;

/// <summary>
/// A revision of a hub repository as users write it: a branch (<c>main</c>), a tag (<c>v1.0</c>), a pull request's ref
/// (<c>refs/pr/1</c>) or a commit (40 hex digits). Checked where it comes in (command line, model list) so it can
/// name a folder of a Hugging Face cache (<c>refs/REVISION</c>) and a segment of a hub address without surprises.
/// </summary>
internal static class HubRevision
{
    /// <summary>The revision used when none is asked for.</summary>
    public const string Default = "main";

    /// <summary>Longest revision accepted (git's own refs are far shorter in practice).</summary>
    public const int MaxLength = 255;

    /// <summary>Hex digits of a git commit id (SHA-1).</summary>
    public const int CommitLength = 40;

    /// <summary>
    /// Why <paramref name="revision"/> is not a usable revision (a phrase to put in a sentence), or <see langword="null"/>
    /// when it is: 1 to <see cref="MaxLength"/> characters of <c>[A-Za-z0-9._/-]</c>, '/'-separated parts that are
    /// neither empty, <c>.</c>, <c>..</c> nor start with <c>.</c> or <c>-</c>.
    /// </summary>
    public static string? Validate(string? revision)
    {
        if (string.IsNullOrEmpty(revision))
        {
            return "the revision is empty";
        }
        if (revision.Length > MaxLength)
        {
            return $"the revision is longer than {MaxLength} characters";
        }
        foreach (char c in revision)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '-' or '/'))
            {
                return $"revision \"{revision}\" contains the character '{c}' (allowed: ASCII letters and digits, '.', '_', '-', '/')";
            }
        }
        foreach (string part in revision.Split('/'))
        {
            if (part.Length == 0 || part[0] is '.' or '-')
            {
                return $"revision \"{revision}\" has an empty part or one starting with '.' or '-'";
            }
        }
        return null;
    }

    /// <summary>Whether <paramref name="revision"/> is a full commit id: exactly 40 lower- or upper-case hex digits.</summary>
    public static bool IsCommit(string? revision) =>
        revision is { Length: CommitLength } && revision.All(char.IsAsciiHexDigit);
}
