using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Hub;

/// <summary>A disagreement between a model card's <c>base_model</c> and the model list.</summary>
/// <param name="ModelId">The finetune whose card disagrees.</param>
/// <param name="ListedBase">The base the model list implies (its first line).</param>
/// <param name="CardBases">What the card's <c>base_model</c> says.</param>
internal sealed record BaseModelDisagreement(ModelId ModelId, ModelId ListedBase, IReadOnlyList<string> CardBases);

/// <summary>Reads the YAML front matter of a model card (<c>README.md</c>) for <c>base_model</c>.</summary>
internal static class ModelCard
{
    /// <summary>The card file name in a model folder.</summary>
    public const string FileName = "README.md";

    /// <summary>Cards larger than this are not read (real ones are a few kilobytes to a few hundred).</summary>
    public const int MaxCardSize = 4 << 20;

    /// <summary>
    /// The <c>base_model</c> entries of the card at <paramref name="readmePath"/>: empty when the file
    /// is missing, too large, or has no front matter or no such key.
    /// </summary>
    public static IReadOnlyList<string> ReadBaseModels(string readmePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(readmePath);
        var info = new FileInfo(readmePath);
        if (!info.Exists || info.Length > MaxCardSize)
        {
            return [];
        }
        return ParseBaseModels(File.ReadAllText(readmePath));
    }

    /// <summary>
    /// The <c>base_model</c> entries of a card's text. Understands the forms cards use:
    /// <c>base_model: org/name</c> (quoted or not), <c>base_model: [a, b]</c> and a block list of <c>- org/name</c> lines.
    /// </summary>
    public static IReadOnlyList<string> ParseBaseModels(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] lines = text.TrimStart('\uFEFF').Split('\n');
        if (lines.Length == 0 || lines[0].TrimEnd() != "---")
        {
            return [];
        }
        var result = new List<string>();
        for (int i = 1; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.TrimEnd() is "---" or "...")
            {
                break;
            }
            if (!line.StartsWith("base_model:", StringComparison.Ordinal))
            {
                continue;
            }
            string value = StripComment(line["base_model:".Length..]).Trim();
            if (value.StartsWith('['))
            {
                result.AddRange(value.Trim('[', ']').Split(',').Select(Unquote).Where(v => v.Length > 0));
            }
            else if (value.Length > 0)
            {
                result.Add(Unquote(value));
            }
            else
            {
                // A block list: indented or not, "- item" lines until the next key.
                for (i++; i < lines.Length; i++)
                {
                    string item = StripComment(lines[i].TrimEnd('\r')).Trim();
                    if (item.Length == 0)
                    {
                        continue;
                    }
                    if (!item.StartsWith('-') || item is "---" || (item.Length > 1 && item[1] != ' '))
                    {
                        i--;
                        break;
                    }
                    string v = Unquote(item[1..]);
                    if (v.Length > 0)
                    {
                        result.Add(v);
                    }
                }
            }
            break;
        }
        return result;
    }

    /// <summary>
    /// Compares each finetune's card with the model list (first line the base, the rest its
    /// finetunes) and logs a warning for each card whose <c>base_model</c> names another model.
    /// A card without <c>base_model</c> is not a disagreement.
    /// </summary>
    public static IReadOnlyList<BaseModelDisagreement> CheckAgainstList(ModelList list, string modelDir, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        return CheckAgainstList(list, model => model.FolderPath(modelDir), logger);
    }

    /// <summary>As <see cref="CheckAgainstList(ModelList, string, ILogger)"/>, each model's folder given by <paramref name="folderOf"/> (a cache snapshot, say).</summary>
    public static IReadOnlyList<BaseModelDisagreement> CheckAgainstList(ModelList list, Func<ModelId, string> folderOf, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(list);
        ArgumentNullException.ThrowIfNull(folderOf);
        ArgumentNullException.ThrowIfNull(logger);
        var disagreements = new List<BaseModelDisagreement>();
        foreach (ModelId model in list.Others)
        {
            IReadOnlyList<string> bases = ReadBaseModels(Path.Combine(folderOf(model), FileName));
            // A card's base_model is its author's free text, compared as written rather than parsed.
            if (bases.Count == 0 || bases.Contains(list.Base.ToString(), StringComparer.Ordinal))
            {
                continue;
            }
            disagreements.Add(new BaseModelDisagreement(model, list.Base, bases));
            logger.LogWarning("{Model}: its model card says base_model {CardBase}, but the model list makes it a finetune of {ListBase}",
                model, string.Join(", ", bases), list.Base);
        }
        return disagreements;
    }

    private static string StripComment(string value)
    {
        int hash = value.IndexOf(" #", StringComparison.Ordinal);
        return hash >= 0 ? value[..hash] : value;
    }

    private static string Unquote(string value)
    {
        value = value.Trim();
        if (value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[^1] == value[0])
        {
            value = value[1..^1];
        }
        return value.Trim();
    }
}
