using System.Text;
using System.Text.Json;
using ZipLlm.Domain;
using ZipLlm.IO;

namespace ZipLlm.Config;

/// <summary>
/// <c>base_ft.json</c>: <c>{ "org/base": ["org/ft1", "other_org/ft2", ...] }</c>. A key is a base;
/// a model listed under a key is its finetune; any other model is standalone. A model may have at
/// most one base. A base may itself be a finetune of another (a chain: base, instruct, a finetune of the
/// instruct model), but no chain may lead back to where it started.
/// </summary>
internal sealed class BaseFtMap
{
    /// <summary>A map file is a few kilobytes; anything past this is not one.</summary>
    public const int MaxFileSize = 16 << 20;

    private readonly List<KeyValuePair<ModelId, IReadOnlyList<ModelId>>> _entries = [];
    private readonly Dictionary<ModelId, ModelId> _baseOf = [];

    /// <summary>Creates an empty map: every model is standalone.</summary>
    public BaseFtMap()
    {
    }

    /// <summary>Creates a map from (base, finetunes) pairs, kept in the order given.</summary>
    /// <exception cref="ArgumentException">An id is <c>default(ModelId)</c>, a base repeats, a model has two bases, or a chain of bases is circular.</exception>
    public BaseFtMap(IEnumerable<KeyValuePair<ModelId, IReadOnlyList<ModelId>>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach (KeyValuePair<ModelId, IReadOnlyList<ModelId>> entry in entries)
        {
            string? problem = TryAdd(entry.Key, entry.Value);
            if (problem is not null)
            {
                throw new ArgumentException(problem + ".", nameof(entries));
            }
        }
    }

    /// <summary>Bases with their finetunes, in file order.</summary>
    public IReadOnlyList<KeyValuePair<ModelId, IReadOnlyList<ModelId>>> Entries => _entries;

    /// <summary>
    /// The map a model list implies: its first model is the base, every other model a finetune of it.
    /// </summary>
    public static BaseFtMap FromModelList(ModelList list)
    {
        ArgumentNullException.ThrowIfNull(list);
        return new BaseFtMap([new(list.Base, list.Others.ToArray())]);
    }

    /// <summary>The role of <paramref name="modelId"/>: a finetune when it is listed under a base (even when it is a base of others too).</summary>
    public ModelRole RoleOf(ModelId modelId)
    {
        if (_baseOf.TryGetValue(modelId, out ModelId baseId))
        {
            return new ModelRole(ModelRoleKind.Finetune, baseId);
        }
        foreach (KeyValuePair<ModelId, IReadOnlyList<ModelId>> entry in _entries)
        {
            if (entry.Key == modelId)
            {
                return new ModelRole(ModelRoleKind.Base, null);
            }
        }
        return ModelRole.Standalone;
    }

    /// <summary>The finetunes listed under <paramref name="baseId"/> (empty when it is not a base).</summary>
    public IReadOnlyList<ModelId> FinetunesOf(ModelId baseId)
    {
        foreach (KeyValuePair<ModelId, IReadOnlyList<ModelId>> entry in _entries)
        {
            if (entry.Key == baseId)
            {
                return entry.Value;
            }
        }
        return [];
    }

    /// <summary>Reads and validates <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// The file is not a regular file or is larger than <see cref="MaxFileSize"/>, is not a JSON object of string arrays, an id is invalid, a model is listed under
    /// two bases, or a chain of bases is circular; the message names the file and the model.
    /// </exception>
    public static BaseFtMap Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        return Parse(InputFile.ReadAll(fullPath, MaxFileSize, "base/finetune map"), fullPath);
    }

    /// <summary>Parses the bytes of a <c>base_ft.json</c>; <paramref name="fileName"/> is named in errors.</summary>
    /// <exception cref="InvalidDataException">The content is not a valid map.</exception>
    public static BaseFtMap Parse(ReadOnlyMemory<byte> json, string fileName)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(InputFile.WithoutByteOrderMark(json), new JsonDocumentOptions { MaxDepth = 4 });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{fileName}: not valid JSON: {ex.Message}", ex);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{fileName}: must be a JSON object mapping each base id to an array of finetune ids.");
            }
            var map = new BaseFtMap();
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.Array)
                {
                    throw new InvalidDataException($"{fileName}: the value of \"{property.Name}\" must be an array of model ids.");
                }
                if (!ModelId.TryParse(property.Name, out ModelId baseId, out string? problem))
                {
                    throw new InvalidDataException($"{fileName}: base {problem}.");
                }
                var finetunes = new List<ModelId>();
                foreach (JsonElement item in property.Value.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String)
                    {
                        throw new InvalidDataException($"{fileName}: \"{property.Name}\" lists a {item.ValueKind.ToString().ToLowerInvariant()}, not a model id string.");
                    }
                    if (!ModelId.TryParse(item.GetString(), out ModelId finetune, out problem))
                    {
                        throw new InvalidDataException($"{fileName}: finetune of \"{baseId}\": {problem}.");
                    }
                    finetunes.Add(finetune);
                }
                problem = map.TryAdd(baseId, finetunes);
                if (problem is not null)
                {
                    throw new InvalidDataException($"{fileName}: {problem}.");
                }
            }
            return map;
        }
    }

    /// <summary>The JSON text of the map (indented, bases in order).</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            foreach (KeyValuePair<ModelId, IReadOnlyList<ModelId>> entry in _entries)
            {
                writer.WriteStartArray(entry.Key.ToString());
                foreach (ModelId ft in entry.Value)
                {
                    writer.WriteStringValue(ft.ToString());
                }
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>Writes the map to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        AtomicFile.WriteAllText(path, ToJson());
    }

    private string? TryAdd(ModelId baseId, IReadOnlyList<ModelId> finetunes)
    {
        if (baseId.IsDefault || finetunes.Any(ft => ft.IsDefault))
        {
            return "a map cannot hold default(ModelId)";
        }
        if (_entries.Any(e => e.Key == baseId))
        {
            return $"base \"{baseId}\" appears twice";
        }
        var added = new List<ModelId>(finetunes.Count);
        foreach (ModelId ft in finetunes)
        {
            if (ft == baseId)
            {
                return $"\"{baseId}\" is listed as its own finetune";
            }
            if (_baseOf.TryGetValue(ft, out ModelId other))
            {
                return other == baseId
                    ? $"\"{ft}\" is listed twice under \"{baseId}\""
                    : $"\"{ft}\" is listed under two bases, \"{other}\" and \"{baseId}\"";
            }
            // A chain is allowed, a circle is not: walking up from the base must not reach the finetune.
            for (ModelId up = baseId; _baseOf.TryGetValue(up, out ModelId next); up = next)
            {
                if (next == ft)
                {
                    return $"\"{ft}\" is listed as a finetune of \"{baseId}\", which descends from it: the chain of bases is circular";
                }
            }
            _baseOf[ft] = baseId;
            added.Add(ft);
        }
        _entries.Add(new(baseId, added));
        return null;
    }
}
