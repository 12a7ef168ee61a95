using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Session;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Jobs;

/// <summary>The jobs over a stored family: each opens the store, locks it and reports what it did.</summary>
public class StoreJobsTests
{
    [Fact]
    public void RestoreVerifyListRemoveGc_OverAStoredFamily_DoWhatTheySay()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        ZipLlmConfig config = ZipLlmConfig.Load(dir.Combine("config.json"));
        Assert.Empty(new CompressJob(config, NullLogger.Instance).Run().Failures);
        ModelId ft = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune);

        RestoreResult restored = new RestoreJob(config).Run(ft, dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(family.Get(SyntheticModelKind.FullFinetune).Folder), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.Equal(family.Get(SyntheticModelKind.FullFinetune).Bytes, restored.Bytes);

        var checkedModels = new List<ModelId>();
        VerifyReport verify = new VerifyJob(config) { ModelChecked = (model, _) => checkedModels.Add(model) }.Run(null);
        Assert.True(verify.Intact);
        Assert.Equal(family.Models.Select(m => m.Id).Order(), checkedModels);

        StoreListing listing = new ListJob(config).Run();
        Assert.Equal(family.Models.Count, listing.Manifests.Count);
        Assert.InRange(listing.StoredBytes, 1, listing.OriginalBytes - 1);

        ModelId standalone = SyntheticFamily.IdOf(SyntheticModelKind.Standalone);
        Assert.True(new RemoveJob(config, NullLogger.Instance).Run(standalone).Objects > 0);
        Assert.Equal(family.Models.Count - 1, new ListJob(config).Run().Manifests.Count);
        Assert.Equal(0, new GcJob(config, NullLogger.Instance).Run(dryRun: false, TimeSpan.Zero).Objects);
    }

    [Fact]
    public void Jobs_ModelNotStored_ThrowKeyNotFoundNamingIt()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        ZipLlmConfig config = ZipLlmConfig.Load(dir.Combine("config.json"));
        new CompressJob(config, NullLogger.Instance).Run();

        Assert.Contains("no/such", Assert.Throws<ModelNotFoundException>(() => new RestoreJob(config).Run(ModelId.Parse("no/such"), dir.Combine("out"), force: false)).Message);
        Assert.Contains("no/such", Assert.Throws<ModelNotFoundException>(() => new VerifyJob(config).Run(ModelId.Parse("no/such"))).Message);
        Assert.Contains("no/such", Assert.Throws<ModelNotFoundException>(() => new RemoveJob(config, NullLogger.Instance).Run(ModelId.Parse("no/such"))).Message);
        Assert.False(Directory.Exists(dir.Combine("out")));
    }

    [Fact]
    public void Verify_DamagedManifest_IsReportedAndTheOtherModelsStillChecked()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        ZipLlmConfig config = ZipLlmConfig.Load(dir.Combine("config.json"));
        new CompressJob(config, NullLogger.Instance).Run();
        string victim = ModelStore.Open(config.StorageDir, create: false).Layout.ManifestPath(SyntheticFamily.IdOf(SyntheticModelKind.Standalone));
        File.WriteAllText(victim, File.ReadAllText(victim).Replace("\"config.json\"", "\"config.jsoN\""));

        VerifyReport report = new VerifyJob(config).Run(null);

        Assert.False(report.Intact);
        Assert.Contains(victim, Assert.Single(report.DamagedManifests));
        Assert.Equal(family.Models.Count - 1, report.Models.Count);
        Assert.All(report.Models, m => Assert.Empty(m.Problems));
    }
}
