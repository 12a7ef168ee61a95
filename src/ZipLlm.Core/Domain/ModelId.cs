using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ZipLlm.Domain;

/// <summary>
/// A Hugging Face model id, <c>org/name</c>, parsed once where it enters (command line, model list, base_ft.json,
/// manifest) and passed inward as such. Only <see cref="Parse"/> and <see cref="TryParse"/> make one, so every
/// id in hand is valid; equality and order are ordinal. A folder name is derived from an id, never the other way
/// round: org names may themselves contain <c>_</c>. In JSON, the <c>org/name</c> string.
/// </summary>
/// <remarks>
/// <c>default(ModelId)</c> (an unset field, a missing JSON property) holds no id: <see cref="IsDefault"/> says so
/// where one can come in, and every member that yields the id's text (<see cref="ToString"/>, <see cref="Org"/>,
/// <see cref="Name"/>, <see cref="FolderName"/>, the JSON writer) throws <see cref="InvalidOperationException"/>
/// for it. Unlike <c>ContentHash.ToString</c>, which only ever ends in a message, an id's text becomes manifest
/// keys, lock names, folders and URLs, where an empty fallback would pass unseen. Equality, hashing and order
/// stay total (a default equals only a default and sorts first), so a default in a set fails where it is used,
/// not where it is stored.
/// </remarks>
[JsonConverter(typeof(ModelIdJsonConverter))]
[DebuggerDisplay("{_value ?? \"(default ModelId)\",nq}")]
internal readonly record struct ModelId : IComparable<ModelId>
{
    /// <summary>Longest id accepted; the hub's own limit is 96 characters per part.</summary>
    public const int MaxLength = 200;

    private readonly string? _value;

    private ModelId(string value) => _value = value;

    /// <summary>Whether this is <c>default(ModelId)</c>, which holds no id.</summary>
    public bool IsDefault => _value is null;

    /// <summary>The part before the <c>/</c>.</summary>
    /// <exception cref="InvalidOperationException">This is <c>default(ModelId)</c>.</exception>
    public string Org => Value[..Value.IndexOf('/')];

    /// <summary>The part after the <c>/</c>.</summary>
    /// <exception cref="InvalidOperationException">This is <c>default(ModelId)</c>.</exception>
    public string Name => Value[(Value.IndexOf('/') + 1)..];

    /// <summary>
    /// The folder name of the model: the <c>/</c> becomes <c>_</c> (<c>"org/name"</c> gives <c>"org_name"</c>),
    /// as the original tool and its downloader do.
    /// </summary>
    /// <exception cref="InvalidOperationException">This is <c>default(ModelId)</c>.</exception>
    public string FolderName => Value.Replace('/', '_');

    private string Value => _value ?? throw new InvalidOperationException("default(ModelId) holds no model id.");

    /// <summary>The folder holding the model: <c>modelDir/org_name</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="modelDir"/> is empty.</exception>
    /// <exception cref="InvalidOperationException">This is <c>default(ModelId)</c>.</exception>
    public string FolderPath(string modelDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        return Path.Combine(modelDir, FolderName);
    }

    /// <summary>Parses <c>org/name</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="text"/> is not a valid model id; the message says why.</exception>
    public static ModelId Parse(string? text, [CallerArgumentExpression(nameof(text))] string? paramName = null) =>
        TryParse(text, out ModelId id, out string? error) ? id : throw new UsageException($"Invalid model id: {error}.", paramName);

    /// <summary>
    /// Parses <paramref name="text"/> when it is <c>org/name</c> with exactly one <c>/</c>, non-empty parts other
    /// than <c>.</c> and <c>..</c>, and only <c>[A-Za-z0-9._-]</c>; otherwise <paramref name="error"/> says why
    /// (a phrase such as <c>"x" is not of the form org/name (no '/')</c>, to be put in a sentence).
    /// </summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out ModelId id, [NotNullWhen(false)] out string? error)
    {
        id = default;
        error = Validate(text);
        if (error is not null)
        {
            return false;
        }
        id = new ModelId(text!);
        return true;
    }

    private static string? Validate(string? id)
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
                return $"\"{id}\" contains the character '{c}' (allowed: ASCII letters and digits, '.', '_', '-', as on the hub)";
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

    private static bool IsIdChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-';

    /// <summary>Ordinal order of the ids' text; <c>default(ModelId)</c> sorts first.</summary>
    public int CompareTo(ModelId other) => string.CompareOrdinal(_value, other._value);

    /// <summary>The id, <c>org/name</c>.</summary>
    /// <exception cref="InvalidOperationException">This is <c>default(ModelId)</c>.</exception>
    public override string ToString() => Value;
}

/// <summary>Reads and writes a <see cref="ModelId"/> as its <c>org/name</c> string; anything else is malformed JSON.</summary>
internal sealed class ModelIdJsonConverter : JsonConverter<ModelId>
{
    /// <inheritdoc/>
    public override ModelId Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string? text = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return ModelId.TryParse(text, out ModelId id, out string? error) ? id : throw new JsonException($"Invalid model id: {error}.");
    }

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException"><paramref name="value"/> is <c>default(ModelId)</c>.</exception>
    public override void Write(Utf8JsonWriter writer, ModelId value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
