using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary><c>zipllm serve</c> over a store in a bucket of the tests' Ceph RADOS Gateway.</summary>
[Collection("Serve processes")]
public sealed class ServeS3Tests
{
    [NeedsFact("curl", "radosgw")]
    public async Task Serve_StoreInBucket_EveryFileByteExactAndListed()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        SyntheticModel finetune = family.Get(SyntheticModelKind.FullFinetune);
        File.WriteAllLines(dir.Combine("two.txt"), [family.BaseId.ToString(), finetune.Id.ToString()]);
        string url = RgwGateway.NewStoreUrl();
        File.WriteAllText(dir.Combine("config.json"),
            $$"""{"model_dir": "models", "storage_dir": "{{url}}", "models_to_process": "two.txt", "base_ft_path": "base_ft.json", "threads": 2}""");
        IReadOnlyDictionary<string, string> environment = RgwGateway.Shared.Environment;
        CliResult compress = await CliProcess.RunAsync(["compress", dir.Combine("config.json"), "-q"], environment: environment, timeout: TimeSpan.FromMinutes(3));
        Assert.True(compress.ExitCode == 0, compress.StandardError);

        using ServeProcess server = ServeProcess.Start(dir.Combine("config.json"), environment);
        CurlResult list = await Curl.RunAsync(server.Url("/api/models"));
        Assert.Contains(finetune.Id.ToString(), System.Text.Encoding.UTF8.GetString(list.Body));
        foreach (SyntheticModel model in new[] { family.Get(SyntheticModelKind.Base), finetune })
        {
            foreach (string path in Directory.EnumerateFiles(model.Folder))
            {
                CurlResult file = await Curl.RunAsync(server.Url($"/{model.Id}/resolve/main/{Path.GetFileName(path)}"));
                Assert.Equal(200, file.Status);
                Assert.Equal(File.ReadAllBytes(path), file.Body);
            }
        }
        byte[] shard = File.ReadAllBytes(Directory.EnumerateFiles(finetune.Folder, "*.safetensors").First());
        CurlResult range = await Curl.RunAsync(server.Url($"/{finetune.Id}/resolve/main/{Path.GetFileName(Directory.EnumerateFiles(finetune.Folder, "*.safetensors").First())}"),
            "-r", "1000-5095");
        Assert.Equal(206, range.Status);
        Assert.Equal(shard[1000..5096], range.Body);
    }
}
