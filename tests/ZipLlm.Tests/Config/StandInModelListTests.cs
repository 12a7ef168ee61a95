using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Config;

public class StandInModelListTests
{
    private static readonly ModelList s_family = new([ModelId.Parse("synthetic/base"), ModelId.Parse("synthetic/ft")]);

    private static ZipLlmConfig Config(TempDir dir, string list = "test_models.txt") =>
        ZipLlmConfig.Load(dir.Write("config.json", $$"""{"model_dir": "models", "storage_dir": "store", "models_to_process": "{{list}}", "base_ft_path": "base_ft.json"}"""));

    [Fact]
    public void Resolve_NoStandIn_ReadsTheConfiguredList()
    {
        using var dir = new TempDir();
        ZipLlmConfig config = Config(dir);
        Assert.Equal(new ModelListChoice(config.ModelsToProcess, null), StandInModelList.Resolve(config));
    }

    [Fact]
    public void Resolve_StandInForTheUnchangedList_ReadsTheStandInWithItsReason()
    {
        using var dir = new TempDir();
        ZipLlmConfig config = Config(dir);
        dir.Write("test_models.txt", "org/real\n");
        string path = StandInModelList.Write(config, s_family, "no token\nand no hub");

        ModelListChoice choice = StandInModelList.Resolve(config);
        Assert.True(choice.IsStandIn);
        Assert.Equal(path, choice.Path);
        Assert.Equal("no token and no hub", choice.StandInReason);
        Assert.Equal(s_family.Models, ModelList.Load(choice.Path).Models);
        Assert.Equal("org/real\n", File.ReadAllText(config.ModelsToProcess));
    }

    [Fact]
    public void Resolve_ConfiguredListMissingThenAndNow_ReadsTheStandIn()
    {
        using var dir = new TempDir();
        ZipLlmConfig config = Config(dir);
        StandInModelList.Write(config, s_family, "asked for");
        Assert.True(StandInModelList.Resolve(config).IsStandIn);
    }

    [Theory]
    [InlineData("org/real\norg/other\n")]
    [InlineData("org/real \n")]
    public void Resolve_ListEditedSince_ReadsTheListAndNamesTheStaleStandIn(string edited)
    {
        using var dir = new TempDir();
        ZipLlmConfig config = Config(dir);
        dir.Write("test_models.txt", "org/real\n");
        string path = StandInModelList.Write(config, s_family, "no hub");
        dir.Write("test_models.txt", edited);

        ModelListChoice choice = StandInModelList.Resolve(config);
        Assert.False(choice.IsStandIn);
        Assert.Equal(config.ModelsToProcess, choice.Path);
        Assert.Equal(path, choice.StaleStandIn);
    }

    [Fact]
    public void Resolve_StandInOfAnotherConfigSharingTheModelFolder_ReadsThisConfigsList()
    {
        using var dir = new TempDir();
        ZipLlmConfig mine = Config(dir, "mine.txt");
        StandInModelList.Write(Config(dir, "theirs.txt"), s_family, "no hub");
        Assert.Equal(mine.ModelsToProcess, StandInModelList.Resolve(Config(dir, "mine.txt")).Path);
    }

    [Fact]
    public void Resolve_FileWithoutTheMarker_IsNoStandIn()
    {
        using var dir = new TempDir();
        ZipLlmConfig config = Config(dir);
        string path = StandInModelList.Write(config, s_family, "no hub");
        File.WriteAllText(path, "# a list of my own\n" + File.ReadAllText(path));
        Assert.False(StandInModelList.Resolve(config).IsStandIn);
        Assert.False(StandInModelList.Delete(config));
        Assert.True(File.Exists(path));
    }

    [Fact]
    public void Delete_StandIn_RemovesItAndTheConfiguredListIsReadAgain()
    {
        using var dir = new TempDir();
        ZipLlmConfig config = Config(dir);
        StandInModelList.Write(config, s_family, "no hub");
        Assert.True(StandInModelList.Delete(config));
        Assert.False(File.Exists(StandInModelList.PathFor(config)));
        Assert.False(StandInModelList.Delete(config));
        Assert.False(StandInModelList.Resolve(config).IsStandIn);
    }
}
