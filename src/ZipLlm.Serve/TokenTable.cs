using System.Security.Cryptography;
using System.Text;

namespace ZipLlm.Serve;

/// <summary>
/// Who may read what (<c>--tokens FILE</c>): one token a line, then the models it may read, as patterns separated by
/// spaces: <c>org/name</c>, <c>org/*</c> (every model of the org) or <c>*</c> (all). Blank lines and lines starting
/// with <c>#</c> are skipped. A request shows its token as <c>Authorization: Bearer TOKEN</c>; tokens are compared in
/// constant time (their SHA-256s, every one of them) and never appear in a message.
/// </summary>
public sealed class TokenTable
{
    /// <summary>Largest token file read.</summary>
    public const int MaxFileSize = 1 << 20;

    private readonly Entry[] _entries;

    private TokenTable(Entry[] entries) => _entries = entries;

    /// <summary>How many tokens the table holds.</summary>
    public int Count => _entries.Length;

    /// <summary>Reads the token file at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">A line is not a token and patterns, or a token is there twice (the message names the line, never the token).</exception>
    /// <exception cref="IOException">The file cannot be read, or is larger than <see cref="MaxFileSize"/>.</exception>
    public static TokenTable Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (info.Exists && info.Length > MaxFileSize)
        {
            throw new IOException($"Token file {path} is {info.Length} bytes; the largest read is {MaxFileSize}.");
        }
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Reads token file <paramref name="text"/>; <paramref name="source"/> names it in messages.</summary>
    /// <exception cref="InvalidDataException">A line is malformed or repeats a token.</exception>
    public static TokenTable Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var entries = new List<Entry>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            string[] fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2)
            {
                throw new InvalidDataException($"{source}, line {i + 1}: a token needs at least one model pattern after it (org/name, org/* or *).");
            }
            foreach (string pattern in fields.Skip(1))
            {
                if (!IsPattern(pattern))
                {
                    throw new InvalidDataException($"{source}, line {i + 1}: '{pattern}' is not a model pattern (org/name, org/* or *).");
                }
            }
            string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(fields[0])));
            if (!seen.Add(hash))
            {
                throw new InvalidDataException($"{source}, line {i + 1}: the same token is on an earlier line.");
            }
            entries.Add(new Entry(Convert.FromHexString(hash), fields[1..]));
        }
        return new TokenTable([.. entries]);
    }

    /// <summary>
    /// The grant of the token an <c>Authorization</c> header shows (<c>Bearer TOKEN</c>), or null for no header,
    /// another scheme or a token the table does not hold. Every entry is compared, whichever matches.
    /// </summary>
    public TokenGrant? Authenticate(string? authorization)
    {
        const string scheme = "Bearer ";
        if (authorization is null || !authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        byte[] presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[scheme.Length..].Trim()));
        Entry? match = null;
        foreach (Entry entry in _entries)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, entry.Hash))
            {
                match ??= entry;
            }
        }
        return match is null ? null : new TokenGrant(match.Patterns);
    }

    /// <summary>Whether <paramref name="pattern"/> is a model pattern: <c>*</c>, <c>org/*</c> or <c>org/name</c>.</summary>
    internal static bool IsPattern(string pattern)
    {
        if (pattern == "*")
        {
            return true;
        }
        int slash = pattern.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == pattern.Length - 1 || pattern.IndexOf('/', slash + 1) >= 0)
        {
            return false;
        }
        string org = pattern[..slash], name = pattern[(slash + 1)..];
        return !org.Contains('*', StringComparison.Ordinal) && (name == "*" || !name.Contains('*', StringComparison.Ordinal));
    }

    private sealed record Entry(byte[] Hash, string[] Patterns);
}

/// <summary>What one token may read.</summary>
public sealed class TokenGrant
{
    private readonly string[] _patterns;

    internal TokenGrant(string[] patterns) => _patterns = patterns;

    /// <summary>Whether the token may read model <paramref name="modelId"/> (<c>org/name</c>).</summary>
    public bool Covers(string modelId)
    {
        ArgumentNullException.ThrowIfNull(modelId);
        foreach (string pattern in _patterns)
        {
            if (pattern == "*" || string.Equals(pattern, modelId, StringComparison.Ordinal)
                || pattern.EndsWith("/*", StringComparison.Ordinal) && modelId.StartsWith(pattern[..^1], StringComparison.Ordinal)
                    && modelId.IndexOf('/', pattern.Length - 1) < 0)
            {
                return true;
            }
        }
        return false;
    }
}
