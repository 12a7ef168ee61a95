using System.Text.Json;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Tests.Domain;

public class ModelIdTests
{
    [Theory]
    [InlineData("org/name", "org_name")]
    [InlineData("my_org/name", "my_org_name")]
    [InlineData("meta-llama/Llama-3.2-1B", "meta-llama_Llama-3.2-1B")]
    [InlineData("a/b_c", "a_b_c")]
    public void FolderName_ValidId_ReplacesTheSlash(string id, string expected) =>
        Assert.Equal(expected, ModelId.Parse(id).FolderName);

    [Fact]
    public void FolderPath_ValidId_CombinesWithModelDir() =>
        Assert.Equal(Path.Combine("/m", "org_x"), ModelId.Parse("org/x").FolderPath("/m"));

    [Fact]
    public void FolderName_UnderscoreInOrgAndName_TwoIdsMayShareAFolderNameButStayDistinct()
    {
        ModelId a = ModelId.Parse("my_org/x"), b = ModelId.Parse("my/org_x");
        Assert.Equal(a.FolderName, b.FolderName);
        Assert.NotEqual(a, b);
        Assert.Equal(("my_org", "x"), (a.Org, a.Name));
        Assert.Equal(("my", "org_x"), (b.Org, b.Name));
    }

    [Theory]
    [InlineData("org/name")]
    [InlineData("meta-llama/Llama-3.2-1B")]
    [InlineData("a/b")]
    [InlineData("A.b/c_d-9")]
    public void Parse_ValidId_KeepsTheTextAndSplitsIt(string text)
    {
        ModelId id = ModelId.Parse(text);
        Assert.Equal(text, id.ToString());
        Assert.Equal(text, $"{id.Org}/{id.Name}");
        Assert.False(id.IsDefault);
        Assert.True(ModelId.TryParse(text, out ModelId again, out string? error));
        Assert.Equal(id, again);
        Assert.Null(error);
    }

    [Fact]
    public void Parse_LongestAllowed_IsAccepted() =>
        Assert.Equal(ModelId.MaxLength, ModelId.Parse("o/" + new string('n', ModelId.MaxLength - 2)).ToString().Length);

    public static TheoryData<string?, string> Rejected => new()
    {
        { null, "the model id is empty" },
        { "", "the model id is empty" },
        { "o/" + new string('n', ModelId.MaxLength - 1), $"the model id is longer than {ModelId.MaxLength} characters" },
        { "noslash", "\"noslash\" is not of the form org/name (no '/')" },
        { "a/b/c", "\"a/b/c\" has more than one '/'" },
        { "org/../x", "\"org/../x\" has more than one '/'" },
        { "/name", "\"/name\" has an empty org or name" },
        { "org/", "\"org/\" has an empty org or name" },
        { "org/na me", "\"org/na me\" contains the character ' ' (allowed: ASCII letters and digits, '.', '_', '-', as on the hub)" },
        { "org/na#me", "\"org/na#me\" contains the character '#' (allowed: ASCII letters and digits, '.', '_', '-', as on the hub)" },
        { "org\\x/y", "\"org\\x/y\" contains the character '\\' (allowed: ASCII letters and digits, '.', '_', '-', as on the hub)" },
        // ü is a letter: the message must say that only ASCII ones are allowed (it said "letters").
        { "org/mödel-ü", "\"org/mödel-ü\" contains the character 'ö' (allowed: ASCII letters and digits, '.', '_', '-', as on the hub)" },
        { "örg/x", "\"örg/x\" contains the character 'ö' (allowed: ASCII letters and digits, '.', '_', '-', as on the hub)" },
        { "../x", "\"../x\" has an org or name of '.' or '..'" },
        { "./x", "\"./x\" has an org or name of '.' or '..'" },
        { "org/..", "\"org/..\" has an org or name of '.' or '..'" },
        { "org/.", "\"org/.\" has an org or name of '.' or '..'" },
    };

    [Theory]
    [MemberData(nameof(Rejected))]
    public void TryParse_InvalidId_FalseWithTheReason(string? text, string reason)
    {
        Assert.False(ModelId.TryParse(text, out ModelId id, out string? error));
        Assert.Equal(reason, error);
        Assert.True(id.IsDefault);
    }

    [Theory]
    [MemberData(nameof(Rejected))]
    public void Parse_InvalidId_ThrowsArgumentExceptionWithTheReason(string? text, string reason)
    {
        var ex = Assert.Throws<UsageException>(() => ModelId.Parse(text));
        Assert.Equal($"Invalid model id: {reason}. (Parameter 'text')", ex.Message);
        Assert.Equal("text", ex.ParamName);
    }

    [Fact]
    public void Equality_IsOrdinal()
    {
        Assert.Equal(ModelId.Parse("org/name"), ModelId.Parse("org/" + "name"));
        Assert.True(ModelId.Parse("org/name") == ModelId.Parse("org/name"));
        Assert.NotEqual(ModelId.Parse("org/name"), ModelId.Parse("Org/name"));
        Assert.Equal(ModelId.Parse("org/name").GetHashCode(), ModelId.Parse("org/name").GetHashCode());
        Assert.Single(new HashSet<ModelId> { ModelId.Parse("a/b"), ModelId.Parse("a/b") });
    }

    [Fact]
    public void CompareTo_SortsAsTheTextDoesOrdinally()
    {
        string[] texts = ["b/a", "B/a", "a_b/c", "a/b", "a-b/c", "a.b/c", "a/B", "z9/x", "a/b-c"];
        List<ModelId> ids = texts.Select(t => ModelId.Parse(t)).ToList();
        ids.Sort();
        Assert.Equal(texts.Order(StringComparer.Ordinal), ids.Select(id => id.ToString()));
        Assert.Equal(0, ModelId.Parse("a/b").CompareTo(ModelId.Parse("a/b")));
    }

    [Fact]
    public void Default_HoldsNoIdAndThrowsWhereItsTextIsUsed()
    {
        ModelId none = default;
        Assert.True(none.IsDefault);
        Assert.Throws<InvalidOperationException>(() => none.ToString());
        Assert.Throws<InvalidOperationException>(() => none.Org);
        Assert.Throws<InvalidOperationException>(() => none.Name);
        Assert.Throws<InvalidOperationException>(() => none.FolderName);
        Assert.Throws<InvalidOperationException>(() => none.FolderPath("/m"));
        Assert.Throws<InvalidOperationException>(() => $"{none}.json");
    }

    [Fact]
    public void Default_EqualsOnlyDefaultAndSortsFirst()
    {
        Assert.Equal(default, new ModelId());
        Assert.NotEqual(default, ModelId.Parse("a/b"));
        Assert.True(default(ModelId).CompareTo(ModelId.Parse("a/b")) < 0);
        Assert.True(ModelId.Parse("a/b").CompareTo(default) > 0);
    }

    [Fact]
    public void Json_RoundTripsAsTheIdString()
    {
        ModelId id = ModelId.Parse("my_org/Llama-3.2-1B");
        string json = JsonSerializer.Serialize(id, ModelIdTestJsonContext.Default.ModelId);
        Assert.Equal("\"my_org/Llama-3.2-1B\"", json);
        Assert.Equal(id, JsonSerializer.Deserialize(json, ModelIdTestJsonContext.Default.ModelId));
    }

    [Fact]
    public void Json_NullableRoundTripsNullAndAnId()
    {
        Assert.Equal("null", JsonSerializer.Serialize((ModelId?)null, ModelIdTestJsonContext.Default.NullableModelId));
        Assert.Null(JsonSerializer.Deserialize("null", ModelIdTestJsonContext.Default.NullableModelId));
        Assert.Equal(ModelId.Parse("a/b"), JsonSerializer.Deserialize("\"a/b\"", ModelIdTestJsonContext.Default.NullableModelId));
    }

    [Theory]
    [InlineData("\"a/b/c\"", "has more than one '/'")]
    [InlineData("\"\"", "the model id is empty")]
    [InlineData("null", "the model id is empty")]
    [InlineData("42", "the model id is empty")]
    [InlineData("[\"a/b\"]", "the model id is empty")]
    public void Json_InvalidId_IsAJsonExceptionWithTheReason(string json, string reason)
    {
        var ex = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize(json, ModelIdTestJsonContext.Default.ModelId));
        Assert.Contains("Invalid model id: ", ex.Message);
        Assert.Contains(reason, ex.Message);
    }

    [Fact]
    public void Json_Default_IsNotWritten() =>
        Assert.Throws<InvalidOperationException>(() => JsonSerializer.Serialize(default(ModelId), ModelIdTestJsonContext.Default.ModelId));
}

[System.Text.Json.Serialization.JsonSerializable(typeof(ModelId))]
[System.Text.Json.Serialization.JsonSerializable(typeof(ModelId?))]
internal sealed partial class ModelIdTestJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
