using ZipLlm.Cli.Commands;

namespace ZipLlm.Tests.Cli;

public class ModelSuggestionsTests
{
    [Theory]
    [InlineData("", "", 0)]
    [InlineData("abc", "", 3)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("org/model", "org/modle", 2)]
    [InlineData("Org/Model", "org/model", 0)]
    [InlineData("a/b", "a/bc", 1)]
    public void EditDistance_KnownPairs(string a, string b, int expected)
    {
        Assert.Equal(expected, ModelSuggestions.EditDistance(a, b));
        Assert.Equal(expected, ModelSuggestions.EditDistance(b, a));
    }

    [Fact]
    public void Closest_NameWithoutOrgFirst_ThenNearestWithinAFifthOfTheLength()
    {
        string[] stored = ["synthetic/llama-base", "synthetic/llama-base-f16", "my_org/llama-base-reupload", "synthetic/llama-full-ft"];
        Assert.Equal(["synthetic/llama-base"], ModelSuggestions.Closest("llama-base", stored));
        Assert.Equal(["synthetic/llama-full-ft"], ModelSuggestions.Closest("synthetic/llama-ful-ft", stored));
        Assert.Equal(["synthetic/llama-base"], ModelSuggestions.Closest("synthetic/llama-bse", stored));
        Assert.Equal(["synthetic/llama-base-f16", "synthetic/llama-base"], ModelSuggestions.Closest("synthetic/llama-base-f1", stored));
        Assert.Empty(ModelSuggestions.Closest("other/thing", stored));
    }

    [Fact]
    public void Explain_NothingNear_KeepsTheMessage() =>
        Assert.Equal("Model a/b is not in the store.", ModelSuggestions.Explain("Model a/b is not in the store.", "a/b", ["c/dddd"]));

    [Fact]
    public void Explain_EmptyStoreOrNoList_SaysSoOrKeepsTheMessage()
    {
        Assert.Equal("Model a/b is not in the store; the store holds no model yet.", ModelSuggestions.Explain("Model a/b is not in the store.", "a/b", []));
        Assert.Equal("Model a/b is not in the store.", ModelSuggestions.Explain("Model a/b is not in the store", "a/b", null));
    }
}
