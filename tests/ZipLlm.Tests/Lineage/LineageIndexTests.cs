using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Lineage;
using ZipLlm.Safetensors;
using ZipLlm.Session;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;
using Xunit.Abstractions;

namespace ZipLlm.Tests.Lineage;

/// <summary>
/// The lineage index: summaries rank a model's own family first, and choosing among the handful it proposes loses
/// (almost) nothing against scoring every stored model, on synthetic families.
/// </summary>
public class LineageIndexTests(ITestOutputHelper output)
{
    private static ModelSketch Sketch(int seed, float move = 0, int tensors = 12, string prefix = "model.layers")
    {
        var family = new Random(seed);
        return ModelSketch.Build(Enumerable.Range(0, tensors).Select(t =>
        {
            var random = new Random(seed * 1000 + t);
            var moves = new Random(7919 * (t + 1));
            ushort[] words = Enumerable.Range(0, 4096).Select(_ =>
            {
                float weight = 0.02f * (float)(random.NextDouble() - 0.5);
                return (ushort)(BitConverter.SingleToUInt32Bits(weight + move * 0.02f * (float)(moves.NextDouble() - 0.5)) >> 16);
            }).ToArray();
            byte[] bytes = MemoryMarshal.AsBytes(words.AsSpan()).ToArray();
            return new SketchSource($"{prefix}.{t}.weight", DType.BF16, [words.Length], bytes.Length,
                (offset, destination) => bytes.AsSpan((int)offset, destination.Length).CopyTo(destination));
        }));
    }

    private static LineageIndex Index(ModelSketch sketch) => LineageIndex.Parse(LineageIndex.Summarize(sketch))!;

    [Fact]
    public void DistanceTo_Itself_IsZeroAndAFinetuneIsCloserThanAnotherFamily()
    {
        LineageIndex @base = Index(Sketch(1));
        Assert.Equal(0, @base.DistanceTo(Index(Sketch(1))));
        long finetune = Index(Sketch(1, move: 0.05f)).DistanceTo(@base);
        long other = Index(Sketch(2)).DistanceTo(@base);
        Assert.True(finetune > 0 && finetune * 4 < other, $"finetune {finetune}, other family {other}");
    }

    [Fact]
    public void DistanceTo_ATensorMoreOrLess_MatchesTheRestByName()
    {
        LineageIndex @base = Index(Sketch(1, tensors: 12));
        LineageIndex grown = Index(Sketch(1, tensors: 13));
        Assert.NotEqual(@base.Signature, grown.Signature);
        // Only the tensor the base lacks counts, at the most a value may.
        Assert.Equal(255L * LineageIndex.ValuesPerTensor, grown.DistanceTo(@base));
        Assert.Equal(255L * LineageIndex.ValuesPerTensor * 12, Index(Sketch(1, prefix: "other")).DistanceTo(@base));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(256)]
    [InlineData(16 * 256 + 33)]
    public void Sum_VectorPath_EqualsTheScalarTwin(int length)
    {
        var random = new Random(length);
        ushort[] a = Enumerable.Range(0, length).Select(_ => (ushort)random.Next(65536)).ToArray();
        // Near and far values alike: differences below the cap, and at and past it.
        ushort[] b = a.Select(x => (ushort)(random.Next(2) == 0 ? x + random.Next(-300, 300) : random.Next(65536))).ToArray();
        Assert.Equal(LineageIndex.SumScalar(a, b), LineageIndex.Sum(a, b));
        ushort[] far = a.Select(x => (ushort)(x ^ 0x8000)).ToArray();
        Assert.Equal(255L * length, LineageIndex.Sum(a, far));
    }

    [Fact]
    public void Parse_MalformedSummary_IsNone()
    {
        byte[] summary = LineageIndex.Summarize(Sketch(1));
        Assert.Null(LineageIndex.Parse([]));
        Assert.Null(LineageIndex.Parse(summary[..^1]));
        summary[0] = 9;
        Assert.Null(LineageIndex.Parse(summary));
    }

    [Fact]
    public void Choose_ManyCandidates_ProposesTheModelsOwnFamilyFirst()
    {
        using var planner = new LineagePlanner(null, CodecOptions.Default, NullLogger.Instance);
        for (int family = 1; family <= 30; family++)
        {
            planner.Add(ModelId.Parse($"f{family}/base"), Sketch(family), depth: 0);
        }
        BaseDecision decision = planner.Choose(ModelId.Parse("f17/ft"), Sketch(17, move: 0.05f), hint: null);
        Assert.Equal(ModelId.Parse("f17/base"), decision.Base);
        // Only the handful the index proposed were scored.
        Assert.Equal(LineagePlanner.IndexCandidates, decision.Candidates.Count);
    }

    /// <summary>
    /// Synthetic families stored under orgs of their own; for the models of one more family (each planned, as
    /// `bases` does, then a candidate for the next), the base chosen from the index's proposals and the one chosen by
    /// scoring everyone, and the bytes each is estimated at: the index must lose at most 0.5%.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void Choose_SyntheticFamilies_LosesAtMostHalfAPercentAgainstScoringEveryone()
    {
        using var dir = new TempDir();
        using StoreSession session = StoreSession.Open(dir.Combine("store"), new StoreSessionOptions { Create = true, Threads = 2 });
        using (var storing = new LineagePlanner(session.Store, CodecOptions.Default, NullLogger.Instance))
        {
            for (int seed = 1; seed <= 3; seed++)
            {
                foreach ((ModelId id, string folder) in Family(dir, seed))
                {
                    ModelSketch? sketch = null;
                    session.Compress(id, folder, s =>
                    {
                        sketch = s;
                        BaseDecision d = storing.Choose(id, s, null);
                        return d.Base is { } b ? new ModelRole(ModelRoleKind.Finetune, b) : ModelRole.Standalone;
                    }, null, null, CancellationToken.None);
                    storing.Add(id, sketch!, session.Store.ReadManifest(id).Depth(), session.Store.ReadManifest(id));
                }
            }
        }

        using var indexed = new LineagePlanner(session.Store, CodecOptions.Default, NullLogger.Instance);
        using var everyone = new LineagePlanner(session.Store, CodecOptions.Default, NullLogger.Instance) { ScoreEveryone = true };
        long indexedBytes = 0, everyoneBytes = 0;
        int misses = 0, models = 0;
        foreach ((ModelId id, string folder) in Family(dir, 4))
        {
            ModelSketch sketch = ModelSketches.FromFolder(id, folder);
            BaseDecision byIndex = indexed.Choose(id, sketch, null);
            BaseDecision byAll = everyone.Choose(id, sketch, null);
            Assert.True(byIndex.Candidates.Count <= LineagePlanner.IndexCandidates, $"{id}: {byIndex.Candidates.Count} candidates scored");
            indexedBytes += byIndex.EstimatedBytes;
            everyoneBytes += byAll.EstimatedBytes;
            misses += byIndex.Base == byAll.Base ? 0 : 1;
            models++;
            indexed.Add(id, sketch, byIndex.Depth);
            everyone.Add(id, sketch, byAll.Depth);
        }
        output.WriteLine($"index: {indexedBytes} bytes, scoring everyone: {everyoneBytes} bytes ({100.0 * (indexedBytes - everyoneBytes) / everyoneBytes:F3}%); {misses} of {models} bases differ");
        Assert.True(indexedBytes <= everyoneBytes * 1.005, $"index {indexedBytes} bytes, everyone {everyoneBytes}; {misses} of {models} bases differ");
    }

    private static IEnumerable<(ModelId Id, string Folder)> Family(TempDir dir, int seed)
    {
        SyntheticFamilyResult family = SyntheticFamily.Generate(dir.Combine($"models{seed}"), SyntheticSize.Tiny, seed);
        foreach (SyntheticModel model in family.Models)
        {
            yield return (ModelId.Parse($"f{seed}{(model.Id.Org == "synthetic" ? "" : "m")}/{model.Id.Name}"), model.Folder);
        }
    }
}
