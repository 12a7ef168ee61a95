using System.Text.Json;
using ZipLlm.Cli;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>--json on compress, list, restore and verify, run as processes: stdout is exactly one JSON document (docs/json.md).</summary>
[Trait("Category", "Slow")]
public class JsonOutputTests
{
    [Fact]
    public async Task Compress_Json_OneDocumentWithEveryModelAndTotals()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");

        using JsonDocument first = await RunJson(["compress", config, "--json"]);
        JsonElement root = first.RootElement;
        Assert.Equal(family.Models.Count, root.GetProperty("stored").GetInt32());
        Assert.Equal(0, root.GetProperty("skipped").GetInt32());
        Assert.Equal(0, root.GetProperty("exit_code").GetInt32());
        Assert.Equal(family.Models.Sum(m => m.Bytes), root.GetProperty("original_bytes").GetInt64());
        JsonElement[] models = [.. root.GetProperty("models").EnumerateArray()];
        Assert.Equal(family.Models.Select(m => m.Id.ToString()).Order(), models.Select(m => m.GetProperty("id").GetString()).Order());
        JsonElement reupload = models.Single(m => m.GetProperty("id").GetString() == SyntheticFamily.IdOf(SyntheticModelKind.ReUpload).ToString());
        Assert.True(reupload.GetProperty("dedup").GetBoolean());
        Assert.Equal(JsonValueKind.Null, reupload.GetProperty("ratio").ValueKind);
        Assert.Equal(0, reupload.GetProperty("added_bytes").GetInt64());
        JsonElement fullFt = models.Single(m => m.GetProperty("id").GetString() == SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune).ToString());
        Assert.True(fullFt.GetProperty("delta_tensors").GetInt32() > 0);
        Assert.Equal((double)fullFt.GetProperty("original_bytes").GetInt64() / fullFt.GetProperty("added_bytes").GetInt64(), fullFt.GetProperty("ratio").GetDouble(), 6);

        using JsonDocument again = await RunJson(["compress", config, "--json"]);
        Assert.Equal(family.Models.Count, again.RootElement.GetProperty("skipped").GetInt32());
        Assert.All(again.RootElement.GetProperty("models").EnumerateArray(), m => Assert.True(m.GetProperty("skipped").GetBoolean()));
    }

    [Fact]
    public async Task ListRestoreVerify_Json_DescribeTheStoreAsItIs()
    {
        using var dir = new TempDir();
        (SyntheticFamilyResult family, string config) = await CompressedFamily.CreateAsync(dir);

        using JsonDocument list = await RunJson(["list", config, "--json"]);
        JsonElement models = list.RootElement.GetProperty("models");
        Assert.Equal(family.Models.Count, models.GetArrayLength());
        Assert.Equal(dir.Combine("store"), list.RootElement.GetProperty("store").GetString());
        long stored = Directory.EnumerateFiles(dir.Combine("store", "objects"), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.Equal(stored, list.RootElement.GetProperty("stored_bytes").GetInt64());
        JsonElement lora = models.EnumerateArray().Single(m => m.GetProperty("id").GetString() == SyntheticFamily.IdOf(SyntheticModelKind.LoraFinetune).ToString());
        Assert.Equal("finetune", lora.GetProperty("role").GetString());
        JsonElement chunks = lora.GetProperty("chunks");
        Assert.True(chunks.GetProperty("ordered_difference").GetInt64() + chunks.GetProperty("xor").GetInt64() + chunks.GetProperty("solo").GetInt64() > 0);
        Assert.Equal(family.BaseId.ToString(), lora.GetProperty("base").GetString());
        Assert.Empty(list.RootElement.GetProperty("damaged_manifests").EnumerateArray());

        SyntheticModel model = family.Get(SyntheticModelKind.VocabExtendedFinetune);
        string output = dir.Combine("out");
        using JsonDocument restore = await RunJson(["restore", config, model.Id.ToString(), output, "--json", "--sha256"]);
        Assert.Equal(model.Id.ToString(), restore.RootElement.GetProperty("id").GetString());
        Assert.Equal(output, restore.RootElement.GetProperty("output").GetString());
        Assert.Equal(Directory.GetFiles(output).Length, restore.RootElement.GetProperty("files").GetInt32());
        Assert.Equal(model.Bytes, restore.RootElement.GetProperty("bytes").GetInt64());
        Assert.Equal("sha256", restore.RootElement.GetProperty("check").GetString());

        using JsonDocument verify = await RunJson(["verify", config, "--json"]);
        Assert.True(verify.RootElement.GetProperty("intact").GetBoolean());
        Assert.Equal(family.Models.Count, verify.RootElement.GetProperty("models").GetArrayLength());
        Assert.All(verify.RootElement.GetProperty("models").EnumerateArray(), m => Assert.Empty(m.GetProperty("problems").EnumerateArray()));
    }

    [Fact]
    public async Task Verify_JsonOnADamagedStore_ReportsTheProblemAndExits6()
    {
        using var dir = new TempDir();
        (_, string config) = await CompressedFamily.CreateAsync(dir);
        string victim = Directory.EnumerateFiles(dir.Combine("store", "objects"), "*", SearchOption.AllDirectories).OrderByDescending(f => new FileInfo(f).Length).First();
        File.Delete(victim);

        CliResult result = await CliProcess.RunAsync(["verify", config, "--json", "-q"]);
        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        using JsonDocument verify = JsonDocument.Parse(result.StandardOutput);
        Assert.False(verify.RootElement.GetProperty("intact").GetBoolean());
        Assert.Contains(verify.RootElement.GetProperty("models").EnumerateArray(), m => !m.GetProperty("intact").GetBoolean() && m.GetProperty("problems").GetArrayLength() > 0);
    }

    [Fact]
    public async Task List_Text_SizesInUnitsThatFitAndDedupForARepeatedModel()
    {
        using var dir = new TempDir();
        (_, string config) = await CompressedFamily.CreateAsync(dir);
        CliResult list = await CliProcess.RunAsync(["list", config]);
        Assert.Equal(0, list.ExitCode);
        string reupload = list.StandardOutput.Split('\n').Single(l => l.StartsWith(SyntheticFamily.IdOf(SyntheticModelKind.ReUpload).ToString(), StringComparison.Ordinal));
        Assert.Matches(@"\s0 B\s+dedup\s", reupload);
        Assert.Matches(@"\d+\.\d (KB|MB)", list.StandardOutput);
        Assert.DoesNotMatch(@"\d{4,}\.\d\dx", list.StandardOutput);
    }

    /// <summary>Runs the CLI and parses all of stdout as one JSON document (it fails on anything before or after it).</summary>
    private static async Task<JsonDocument> RunJson(string[] args)
    {
        CliResult result = await CliProcess.RunAsync(args);
        Assert.True(result.ExitCode == 0, result.StandardError);
        return JsonDocument.Parse(result.StandardOutput);
    }
}
