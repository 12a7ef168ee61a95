using ZipLlm.Config;

namespace ZipLlm.Tests.Config;

public class ModelIdTests
{
    [Theory]
    [InlineData("org/name", "org_name")]
    [InlineData("my_org/name", "my_org_name")]
    [InlineData("meta-llama/Llama-3.2-1B", "meta-llama_Llama-3.2-1B")]
    [InlineData("a/b_c", "a_b_c")]
    public void FolderName_ValidId_ReplacesFirstSlash(string id, string expected) =>
        Assert.Equal(expected, ModelId.FolderName(id));

    [Fact]
    public void FolderPath_ValidId_CombinesWithModelDir() =>
        Assert.Equal(Path.Combine("/m", "org_x"), ModelId.FolderPath("/m", "org/x"));

    [Theory]
    [InlineData("")]
    [InlineData("noslash")]
    [InlineData("a/b/c")]
    [InlineData("/name")]
    [InlineData("org/")]
    [InlineData("org/na me")]
    [InlineData("org/na#me")]
    [InlineData("org/../x")]
    [InlineData("../x")]
    [InlineData("org/..")]
    [InlineData("org\\x/y")]
    [InlineData("örg/x")]
    public void FolderName_InvalidId_ThrowsArgumentException(string id)
    {
        Assert.False(ModelId.IsValid(id));
        Assert.Throws<ArgumentException>(() => ModelId.FolderName(id));
    }

    [Fact]
    public void IsValid_Null_False() => Assert.False(ModelId.IsValid(null));
}
