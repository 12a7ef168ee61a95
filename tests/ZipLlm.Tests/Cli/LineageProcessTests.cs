using System.Text.Json;
using ZipLlm.Cli;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>The lineage verbs run as a process: <c>bases</c> (text and JSON), <c>list --tree</c>, and a warning for an overruled hint.</summary>
[Trait("Category", "Slow")]
public class LineageProcessTests
{
    [Fact]
    public async Task Bases_Json_PlansEveryModelAndStoresNothing()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        CliResult result = await CliProcess.RunAsync(["bases", dir.Combine("config.json"), "--json", "-q"]);
        Assert.True(result.ExitCode == ExitCodes.Success, result.StandardError);
        Assert.False(Directory.Exists(dir.Combine("store")));
        using JsonDocument json = JsonDocument.Parse(result.StandardOutput);
        JsonElement[] models = [.. json.RootElement.GetProperty("models").EnumerateArray()];
        Assert.Equal(family.Models.Count, models.Length);
        JsonElement chat = models.Single(m => m.GetProperty("id").GetString() == SyntheticFamily.IdOf(SyntheticModelKind.ChainFinetune).ToString());
        Assert.Equal(SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune).ToString(), chat.GetProperty("base").GetString());
        Assert.Equal(2, chat.GetProperty("depth").GetInt32());
        Assert.Equal("base_ft.json", chat.GetProperty("hint_source").GetString());
        Assert.True(chat.GetProperty("estimated_bytes").GetInt64() < chat.GetProperty("solo_bytes").GetInt64());
        Assert.Contains(chat.GetProperty("candidates").EnumerateArray(), c => c.GetProperty("id").GetString() == family.BaseId.ToString());
    }

    [Fact]
    public async Task Bases_Text_NamesTheChoiceAndTheCandidates()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        File.Delete(dir.Combine("base_ft.json"));
        CliResult result = await CliProcess.RunAsync(["bases", dir.Combine("config.json"), "-q"]);
        Assert.True(result.ExitCode == ExitCodes.Success, result.StandardError);
        Assert.Contains("synthetic/llama-full-ft -> synthetic/llama-base: about ", result.StandardOutput);
        Assert.Contains("synthetic/llama-channels -> none (alone)", result.StandardOutput);
        Assert.Contains("    alone ", result.StandardOutput);
    }

    [Fact]
    public async Task Compress_HintClearlyWorse_WarnsAndListTreeShowsTheChosenBase()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        // A wrong map: the full finetune listed under the unrelated channel-scaled model.
        string fullFt = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune).ToString(), channels = SyntheticFamily.IdOf(SyntheticModelKind.ChannelScaled).ToString();
        File.WriteAllText(dir.Combine("base_ft.json"), $$"""{ "{{channels}}": ["{{fullFt}}"] }""");
        CliResult compress = await CliProcess.RunAsync(["compress", dir.Combine("config.json")]);
        Assert.True(compress.ExitCode == ExitCodes.Success, compress.StandardError);
        Assert.Contains($"{fullFt}: base {family.BaseId}, not {channels}: base_ft.json names {channels}", compress.StandardError);

        CliResult tree = await CliProcess.RunAsync(["list", dir.Combine("config.json"), "--tree"]);
        Assert.True(tree.ExitCode == ExitCodes.Success, tree.StandardError);
        string[] lines = tree.StandardOutput.Split('\n');
        int root = Array.FindIndex(lines, l => l.StartsWith(family.BaseId + "  ", StringComparison.Ordinal));
        Assert.True(root >= 0, tree.StandardOutput);
        Assert.Contains(lines, l => l.StartsWith($"├── {fullFt}  ", StringComparison.Ordinal) || l.StartsWith($"└── {fullFt}  ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains($"── {SyntheticFamily.IdOf(SyntheticModelKind.ChainFinetune)}  ", StringComparison.Ordinal) && l.StartsWith("│   ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(channels + "  ", StringComparison.Ordinal));
    }
}
