using Amazon.S3;
using Amazon.S3.Model;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;
using S3Location = ZipLlm.Store.Backends.S3Location;

namespace ZipLlm.Tests.Cli;

/// <summary>A store in a bucket at its quota (issue 24, item 9): remove and gc, as real processes, still free space.</summary>
[Trait("Category", "S3")]
public class TrustQuotaProcessTests
{
    private static IReadOnlyDictionary<string, string> Environment => RgwGateway.Shared.Environment;

    [Fact]
    public async Task RemoveAndGc_BucketAtItsQuota_FreeSpaceAndACompressWorksAgain()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string url = RgwGateway.NewStoreUrl();
        string config = WriteConfig(dir, "config.json", url, "test_models.txt");
        CliResult compress = await CliProcess.RunAsync(["compress", config], environment: Environment, timeout: TimeSpan.FromMinutes(3));
        Assert.True(compress.ExitCode == 0, compress.StandardError);

        long full = RgwGateway.Shared.BucketBytes(url);
        RgwGateway.Shared.SetBucketQuota(url, full);
        S3Location location = S3Location.Parse(url);
        using (IAmazonS3 client = RgwGateway.Shared.Client())
        {
            // Full: not one more byte goes in (a lease included), nor an overwrite of a key already there.
            foreach (string key in new[] { location.Prefix + "probe", location.FormatKey })
            {
                var refused = await Assert.ThrowsAsync<AmazonS3Exception>(() => client.PutObjectAsync(new PutObjectRequest { BucketName = location.Bucket, Key = key, ContentBody = "x" }));
                Assert.Equal("QuotaExceeded", refused.ErrorCode);
            }
        }

        // Models nothing else is stored against; one of them comes back below, in less space than the two free.
        ModelId standalone = SyntheticFamily.IdOf(SyntheticModelKind.Standalone), far = SyntheticFamily.IdOf(SyntheticModelKind.FarFinetune);
        CliResult removed = await CliProcess.RunAsync(["remove", config, standalone.ToString()], environment: Environment, timeout: TimeSpan.FromMinutes(2));
        Assert.True(removed.ExitCode == 0, removed.StandardError);
        Assert.Contains("quota", removed.StandardError);
        CliResult removedToo = await CliProcess.RunAsync(["remove", config, far.ToString()], environment: Environment, timeout: TimeSpan.FromMinutes(2));
        Assert.True(removedToo.ExitCode == 0, removedToo.StandardError);
        CliResult gc = await CliProcess.RunAsync(["gc", config, "--grace", "0"], environment: Environment, timeout: TimeSpan.FromMinutes(2));
        Assert.True(gc.ExitCode == 0, gc.StandardError);
        Assert.True(RgwGateway.Shared.BucketBytes(url) < full, "remove and gc freed nothing");

        File.WriteAllLines(dir.Combine("again.txt"), [standalone.ToString()]);
        CliResult again = await CliProcess.RunAsync(["compress", WriteConfig(dir, "again.json", url, "again.txt")], environment: Environment, timeout: TimeSpan.FromMinutes(2));
        Assert.True(again.ExitCode == 0, again.StandardError);
        using S3Backend backend = RgwGateway.Shared.Backend(url);
        ModelStore store = ModelStore.Open(backend, create: false);
        Assert.True(store.Contains(standalone));
        Assert.False(store.Contains(far));
        CliResult verify = await CliProcess.RunAsync(["verify", config], environment: Environment, timeout: TimeSpan.FromMinutes(2));
        Assert.True(verify.ExitCode == 0, verify.StandardError);
        // The space kept for a lease is kept again, for the next time the bucket fills up.
        using IAmazonS3 after = RgwGateway.Shared.Client();
        GetObjectMetadataResponse reserve = await after.GetObjectMetadataAsync(location.Bucket, location.ReserveKey);
        Assert.Equal(S3Locks.ReserveBytes, reserve.ContentLength);
    }

    private static string WriteConfig(TempDir dir, string name, string url, string models)
    {
        string path = dir.Combine(name);
        File.WriteAllText(path,
            $$"""{"model_dir": "models", "storage_dir": "{{url}}", "models_to_process": "{{models}}", "base_ft_path": "base_ft.json", "threads": 2}""");
        return path;
    }
}
