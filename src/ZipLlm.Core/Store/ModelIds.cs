namespace ZipLlm.Store;

/// <summary>Rules for Hugging Face style model ids (<c>org/name</c>).</summary>
public static class ModelIds
{
    /// <summary>Whether <paramref name="id"/> is <c>org/name</c> with exactly one slash and safe characters.</summary>
    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 200)
        {
            return false;
        }
        int slash = id.IndexOf('/');
        if (slash <= 0 || slash == id.Length - 1 || id.IndexOf('/', slash + 1) >= 0)
        {
            return false;
        }
        foreach (string part in new[] { id[..slash], id[(slash + 1)..] })
        {
            if (part is "." or "..")
            {
                return false;
            }
            foreach (char c in part)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '-'))
                {
                    return false;
                }
            }
        }
        return true;
    }

    /// <summary>Throws unless <paramref name="id"/> is valid.</summary>
    /// <exception cref="ArgumentException">The id is not <c>org/name</c>.</exception>
    public static void Validate(string id)
    {
        if (!IsValid(id))
        {
            throw new ArgumentException($"\"{id}\" is not a model id of the form org/name (letters, digits, '.', '_', '-').");
        }
    }
}
