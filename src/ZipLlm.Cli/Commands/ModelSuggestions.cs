using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;

namespace ZipLlm.Cli.Commands;

/// <summary>"Did you mean ...?" for a model id the store does not hold: the stored ids closest to it by edit distance.</summary>
internal static class ModelSuggestions
{
    /// <summary>
    /// Parses <paramref name="modelText"/> and runs <paramref name="run"/> on the id; a model it does not find, or an
    /// id without its org, is reported with the closest stored ids.
    /// </summary>
    /// <exception cref="ModelNotFoundException">The model is not stored; the message suggests others.</exception>
    /// <exception cref="ArgumentException">The text is no model id (a name without its org); the message suggests stored ids with that name.</exception>
    public static T Run<T>(ZipLlmConfig config, string modelText, Func<ModelId, T> run)
    {
        if (!ModelId.TryParse(modelText, out ModelId modelId, out string? problem))
        {
            // Only a name without its org gets this far (CommonOptions.ModelArgument refuses other malformed ids).
            throw new UsageException(Explain($"Invalid model id: {problem}.", modelText, StoredIds(config)));
        }
        try
        {
            return run(modelId);
        }
        catch (ModelNotFoundException ex)
        {
            throw new ModelNotFoundException(ex.ModelId, Explain(ex.Message, modelText, StoredIds(config)), ex);
        }
    }

    /// <summary><paramref name="message"/> with what the store holds instead of <paramref name="modelId"/>.</summary>
    internal static string Explain(string message, string modelId, IReadOnlyList<string>? stored)
    {
        string text = message.TrimEnd('.');
        if (stored is null)
        {
            return text + ".";
        }
        if (stored.Count == 0)
        {
            return text + "; the store holds no model yet.";
        }
        IReadOnlyList<string> closest = Closest(modelId, stored);
        return closest.Count > 0 ? $"{text}; did you mean {string.Join(" or ", closest)}?" : message;
    }

    /// <summary>
    /// The stored ids near <paramref name="modelId"/>: those that end with it as their name (the org left out), then
    /// those within an edit distance of a fifth of its length (at least 2: a typo or two), nearest first, at most three.
    /// </summary>
    internal static IReadOnlyList<string> Closest(string modelId, IEnumerable<string> stored)
    {
        int limit = Math.Max(2, modelId.Length / 5);
        return stored
            .Select(id => (Id: id, Distance: id.EndsWith("/" + modelId, StringComparison.OrdinalIgnoreCase) ? 0 : EditDistance(modelId, id)))
            .Where(c => c.Distance <= limit)
            .OrderBy(c => c.Distance).ThenBy(c => c.Id, StringComparer.Ordinal)
            .Take(3)
            .Select(c => c.Id)
            .ToList();
    }

    /// <summary>The Levenshtein distance between <paramref name="a"/> and <paramref name="b"/>, ignoring case.</summary>
    internal static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitution = previous[j - 1] + (char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    private static IReadOnlyList<string>? StoredIds(ZipLlmConfig config)
    {
        try
        {
            return new ListJob(config).Run().Manifests.Select(m => m.Id.ToString()).ToList();
        }
        catch (Exception ex) when (ErrorMapping.TryMap(ex, out _))
        {
            // Suggestions are a help, never a second failure: the store's own error is the one reported.
            return null;
        }
    }
}
