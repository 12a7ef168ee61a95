using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Hub;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Hub;

public class ModelCardTests
{
    [Theory]
    [InlineData("---\nbase_model: org/base\n---\n", "org/base")]
    [InlineData("---\nlicense: mit\nbase_model: \"org/base\"  # quoted\ntags: [a]\n---\n", "org/base")]
    [InlineData("---\r\nbase_model: 'org/base'\r\n---\r\n", "org/base")]
    [InlineData("---\nbase_model:\n- org/a\n- \"org/b\"\nlicense: mit\n---\n", "org/a|org/b")]
    [InlineData("---\nbase_model:\n  - org/a\n\n  - org/b\n---\n", "org/a|org/b")]
    [InlineData("---\nbase_model: [org/a, 'org/b']\n---\n", "org/a|org/b")]
    [InlineData("\uFEFF---\nbase_model: org/base\n---\n", "org/base")]
    public void ParseBaseModels_FrontMatterForms_ReturnsIds(string text, string expected) =>
        Assert.Equal(expected.Split('|'), ModelCard.ParseBaseModels(text));

    [Theory]
    [InlineData("# no front matter\nbase_model: org/x\n")]
    [InlineData("---\nlicense: mit\n---\nbase_model: org/after-front-matter\n")]
    [InlineData("---\n  base_model: org/nested\n---\n")]
    [InlineData("")]
    public void ParseBaseModels_NoKeyInFrontMatter_Empty(string text) =>
        Assert.Empty(ModelCard.ParseBaseModels(text));

    [Fact]
    public void ReadBaseModels_MissingFile_Empty()
    {
        using var dir = new TempDir();
        Assert.Empty(ModelCard.ReadBaseModels(dir.Combine("README.md")));
    }

    [Fact]
    public void CheckAgainstList_CardNamesOtherBase_WarnsOnlyForThatModel()
    {
        using var dir = new TempDir();
        dir.Write("org_ft-good/README.md", "---\nbase_model: org/base\n---\n");
        dir.Write("org_ft-bad/README.md", "---\nbase_model: other/base\n---\n");
        dir.Write("org_ft-none/README.md", "# no card metadata\n");
        var list = new ModelList([ModelId.Parse("org/base"), ModelId.Parse("org/ft-good"), ModelId.Parse("org/ft-bad"), ModelId.Parse("org/ft-none"), ModelId.Parse("org/ft-missing")]);
        var logger = new ListLogger();
        var disagreements = ModelCard.CheckAgainstList(list, dir.Path, logger);
        BaseModelDisagreement d = Assert.Single(disagreements);
        Assert.Equal("org/ft-bad", d.ModelId.ToString());
        Assert.Equal(["other/base"], d.CardBases);
        string warning = Assert.Single(logger.Warnings);
        Assert.Contains("org/ft-bad", warning);
        Assert.Contains("other/base", warning);
    }
}
