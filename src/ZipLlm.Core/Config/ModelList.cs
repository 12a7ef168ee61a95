using System.Text;
using ZipLlm.Domain;
using ZipLlm.IO;

namespace ZipLlm.Config;

/// <summary>
/// The list of models to process (<c>test_models.txt</c>): one Hugging Face id (<c>org/name</c>)
/// a line, the first being the base, optionally pinned to a hub revision as <c>org/name@REVISION</c> (a branch,
/// tag or commit; see <see cref="HubRevision"/>). Blank lines and <c>#</c> comments (whole-line or trailing)
/// are skipped; surrounding whitespace is trimmed.
/// </summary>
internal sealed class ModelList
{
    /// <summary>A list file is a few kilobytes; anything past this is not one.</summary>
    public const int MaxFileSize = 16 << 20;

    /// <summary>Creates a list from ids already in memory.</summary>
    /// <exception cref="ArgumentException">The list is empty, holds <c>default(ModelId)</c>, or an id repeats.</exception>
    public ModelList(IEnumerable<ModelId> models)
        : this(models, null)
    {
    }

    /// <summary>Creates a list from ids already in memory, some pinned to a revision.</summary>
    /// <exception cref="ArgumentException">
    /// The list is empty, holds <c>default(ModelId)</c>, an id repeats, or a revision is invalid or pins a model not listed.
    /// </exception>
    public ModelList(IEnumerable<ModelId> models, IReadOnlyDictionary<ModelId, string>? revisions)
    {
        ArgumentNullException.ThrowIfNull(models);
        var list = new List<ModelId>();
        var seen = new HashSet<ModelId>();
        foreach (ModelId id in models)
        {
            if (id.IsDefault)
            {
                throw new ArgumentException("A model list cannot hold default(ModelId).", nameof(models));
            }
            if (!seen.Add(id))
            {
                throw new ArgumentException($"Model \"{id}\" is listed twice.", nameof(models));
            }
            list.Add(id);
        }
        if (list.Count == 0)
        {
            throw new ArgumentException("A model list needs at least one model (the base).", nameof(models));
        }
        Models = list;
        var pinned = new Dictionary<ModelId, string>();
        foreach ((ModelId id, string revision) in revisions ?? new Dictionary<ModelId, string>())
        {
            if (!seen.Contains(id))
            {
                throw new ArgumentException($"A revision is given for \"{id}\", which is not listed.", nameof(revisions));
            }
            if (HubRevision.Validate(revision) is { } problem)
            {
                throw new ArgumentException($"{id}: {problem}.", nameof(revisions));
            }
            pinned[id] = revision;
        }
        Revisions = pinned;
    }

    /// <summary>The revision each pinned model is listed at (<c>org/name@REVISION</c>); models not in it take the default.</summary>
    public IReadOnlyDictionary<ModelId, string> Revisions { get; }

    /// <summary>The revision <paramref name="modelId"/> is listed at; <see langword="null"/> when it is not pinned.</summary>
    public string? RevisionOf(ModelId modelId) => Revisions.TryGetValue(modelId, out string? revision) ? revision : null;

    /// <summary>Every model, in file order; the first is the base.</summary>
    public IReadOnlyList<ModelId> Models { get; }

    /// <summary>The first model listed.</summary>
    public ModelId Base => Models[0];

    /// <summary>The models after the first.</summary>
    public IEnumerable<ModelId> Others => Models.Skip(1);

    /// <summary>Reads and validates <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// The file is not a regular file or is larger than <see cref="MaxFileSize"/>; a line is not a valid id, an id repeats, or the file lists no model; the message names the
    /// file and the line number.
    /// </exception>
    public static ModelList Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        byte[] bytes = InputFile.ReadAll(fullPath, MaxFileSize, "model list");
        string text;
        try
        {
            text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidDataException($"{fullPath}: model list is not valid UTF-8.", ex);
        }
        return Parse(text, fullPath);
    }

    /// <summary>Parses the text of a list file; <paramref name="fileName"/> is named in errors.</summary>
    /// <exception cref="InvalidDataException">A line is not a valid id, an id repeats, or no model is listed.</exception>
    public static ModelList Parse(string text, string fileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        var models = new List<ModelId>();
        var revisions = new Dictionary<ModelId, string>();
        var firstLine = new Dictionary<ModelId, int>();
        int lineNumber = 0;
        foreach (ReadOnlySpan<char> rawLine in text.AsSpan().EnumerateLines())
        {
            lineNumber++;
            ReadOnlySpan<char> line = rawLine;
            if (lineNumber == 1 && line.Length > 0 && line[0] == '\uFEFF')
            {
                line = line[1..];
            }
            int hash = line.IndexOf('#');
            if (hash >= 0)
            {
                line = line[..hash];
            }
            line = line.Trim();
            if (line.IsEmpty)
            {
                continue;
            }
            string? revision = null;
            int at = line.IndexOf('@');
            if (at >= 0)
            {
                revision = line[(at + 1)..].Trim().ToString();
                line = line[..at].TrimEnd();
                if (HubRevision.Validate(revision) is { } badRevision)
                {
                    throw new InvalidDataException($"{fileName}:{lineNumber}: {badRevision}.");
                }
            }
            if (!ModelId.TryParse(line.ToString(), out ModelId id, out string? problem))
            {
                throw new InvalidDataException($"{fileName}:{lineNumber}: {problem}.");
            }
            if (firstLine.TryGetValue(id, out int previous))
            {
                throw new InvalidDataException($"{fileName}:{lineNumber}: \"{id}\" is already listed on line {previous}.");
            }
            firstLine[id] = lineNumber;
            models.Add(id);
            if (revision is not null)
            {
                revisions[id] = revision;
            }
        }
        if (models.Count == 0)
        {
            throw new InvalidDataException($"{fileName}: lists no model (the first id is the base).");
        }
        return new ModelList(models, revisions);
    }

    /// <summary>The file text for this list, with <paramref name="headerComment"/> lines first (each prefixed by <c># </c>).</summary>
    public string Format(IEnumerable<string>? headerComment = null)
    {
        var builder = new StringBuilder();
        foreach (string line in headerComment ?? [])
        {
            builder.Append(line.StartsWith('#') ? line : "# " + line).Append('\n');
        }
        foreach (ModelId id in Models)
        {
            builder.Append(id.ToString());
            if (RevisionOf(id) is { } revision)
            {
                builder.Append('@').Append(revision);
            }
            builder.Append('\n');
        }
        return builder.ToString();
    }

    /// <summary>Writes the list to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void Save(string path, IEnumerable<string>? headerComment = null) =>
        AtomicFile.WriteAllText(path, Format(headerComment));
}
