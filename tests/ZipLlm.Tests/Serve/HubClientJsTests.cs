using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary>
/// Hugging Face's own JS client (<c>@huggingface/hub</c>, installed into tests/js by <c>npm ci</c>) against a real
/// <c>zipllm serve</c>: a snapshot of every model of the family into an HF cache, byte for byte; that cache compressed
/// again stores the same files with the same hashes (a round trip through a real client).
/// </summary>
[Collection("Serve processes")]
public sealed class HubClientJsTests
{
    [NeedsFact("node", Needs.JsClient)]
    public async Task SnapshotDownload_EveryModel_ByteExactAndCompressesBackToTheSameHashes()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        Assert.Equal(0, (await CliProcess.RunAsync(["compress", config, "-q"], timeout: TimeSpan.FromMinutes(3))).ExitCode);
        using ServeProcess server = ServeProcess.Start(config);
        string cache = dir.Combine("hf-cache");
        string[] ids = [.. family.Models.Select(m => m.Id.ToString())];

        (int exit, string output, string errors) = await NodeAsync([Path.Combine(Needs.JsFolder, "hub-client.mjs"), server.Url(""), cache, .. ids]);
        Assert.True(exit == 0, $"node: {errors}\nserver: {server.Cli.StandardError}");
        using JsonDocument report = JsonDocument.Parse(output);

        using ZipLlmStore store = ZipLlmStore.Open(dir.Combine("store"));
        foreach (SyntheticModel model in family.Models)
        {
            JsonElement result = report.RootElement.GetProperty(model.Id.ToString());
            string snapshot = result.GetProperty("snapshot").GetString()!;
            StoredModel stored = store.GetModel(model.Id.ToString());
            // snapshotDownload: every file, byte for byte, and nothing else.
            Assert.Equal(Files(model.Folder), Files(snapshot));
            foreach (string path in Files(model.Folder))
            {
                Assert.Equal(File.ReadAllBytes(Path.Combine(model.Folder, path)), File.ReadAllBytes(Path.Combine(snapshot, path)));
            }
            // listFiles: the files with their sizes, LFS ones by their SHA-256.
            var listed = result.GetProperty("files").EnumerateArray().Where(f => f.GetProperty("type").GetString() == "file").ToList();
            Assert.Equal(stored.Files.Select(f => f.Path).Order(StringComparer.Ordinal), listed.Select(f => f.GetProperty("path").GetString()));
            foreach (JsonElement entry in listed.Where(f => f.GetProperty("lfs").ValueKind == JsonValueKind.Object))
            {
                StoredModelFile file = stored.Files.Single(f => f.Path == entry.GetProperty("path").GetString());
                Assert.Equal(file.Sha256, entry.GetProperty("lfs").GetProperty("oid").GetString());
                Assert.Equal(file.Length, entry.GetProperty("size").GetInt64());
            }
            // fileDownloadInfo and a downloadFile slice of the largest file.
            JsonElement info = result.GetProperty("info");
            StoredModelFile largest = stored.Files.Single(f => f.Path == info.GetProperty("path").GetString());
            Assert.Equal(largest.Length, info.GetProperty("size").GetInt64());
            Assert.Contains(largest.IsSafetensors ? largest.Sha256 : "", info.GetProperty("etag").GetString()!);
            JsonElement slice = result.GetProperty("slice");
            byte[] original = File.ReadAllBytes(Path.Combine(model.Folder, largest.Path));
            Assert.Equal(original[slice.GetProperty("start").GetInt32()..slice.GetProperty("end").GetInt32()], Convert.FromBase64String(slice.GetProperty("base64").GetString()!));
            // parseSafetensorsMetadata (HEAD on /raw/, then ranges): every tensor name.
            Assert.Equal(stored.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), result.GetProperty("tensors").EnumerateArray().Select(t => t.GetString()));
            Assert.True(result.GetProperty("missingIsNull").GetBoolean());
        }

        // The HF cache the client wrote, compressed into a second store: the same files, the same hashes, the served commit.
        File.WriteAllText(dir.Combine("config-cache.json"),
            """{"model_dir": "hf-cache", "storage_dir": "store2", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json", "threads": 2}""");
        CliResult again = await CliProcess.RunAsync(["compress", dir.Combine("config-cache.json"), "-q"], timeout: TimeSpan.FromMinutes(3));
        Assert.True(again.ExitCode == 0, again.StandardError);
        using ZipLlmStore second = ZipLlmStore.Open(dir.Combine("store2"));
        foreach (StoredModel model in store.ListModels())
        {
            StoredModel copy = second.GetModel(model.Id);
            Assert.Equal(model.Files.Select(f => (f.Path, f.Sha256, f.Length)).Order(), copy.Files.Select(f => (f.Path, f.Sha256, f.Length)).Order());
            Assert.Equal(report.RootElement.GetProperty(model.Id).GetProperty("snapshot").GetString()!.Split('/')[^1], copy.Revision);
        }
    }

    private static List<string> Files(string folder) =>
        [.. Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(folder, f)).Order(StringComparer.Ordinal)];

    internal static async Task<(int ExitCode, string Output, string Errors)> NodeAsync(string[] arguments)
    {
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Needs.JsFolder };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, await stdout, await stderr);
    }
}
