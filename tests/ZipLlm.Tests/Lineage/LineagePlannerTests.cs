using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Config;
using ZipLlm.Lineage;
using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Lineage;

/// <summary>The planner on sketches built in memory: weights as normal BF16 values, finetunes as small moves of them.</summary>
public class LineagePlannerTests
{
    private const int Tensors = 40, Elements = 1 << 16;

    private static ushort[][] Weights(int seed) => Enumerable.Range(0, Tensors).Select(t =>
    {
        var random = new Random(seed * 1000 + t);
        return Enumerable.Range(0, Elements).Select(_ => Bf16(0.02f * Normal(random))).ToArray();
    }).ToArray();

    private static ushort[][] Moved(ushort[][] from, float share, int seed) => from.Select((w, t) =>
    {
        var random = new Random(seed * 1000 + t);
        return w.Select(x => Bf16(Float(x) + share * 0.02f * Normal(random))).ToArray();
    }).ToArray();

    private static ModelSketch Sketch(ushort[][] weights, DType dtype = DType.BF16) => ModelSketch.Build(weights.Select((w, t) =>
    {
        byte[] bytes = MemoryMarshal.AsBytes(w.AsSpan()).ToArray();
        if (dtype == DType.F16)
        {
            HalfConversion.ConvertInPlace(bytes, BaseConversion.Bf16ToF16);
        }
        return new SketchSource($"model.layers.{t}.weight", dtype, [Elements], bytes.Length, (offset, destination) => bytes.AsSpan((int)offset, destination.Length).CopyTo(destination));
    }));

    private static float Normal(Random random) => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
    private static ushort Bf16(float value) => (ushort)(BitConverter.SingleToUInt32Bits(value) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(value) >> 16) & 1) >> 16);
    private static float Float(ushort bf16) => BitConverter.UInt32BitsToSingle((uint)bf16 << 16);

    private static readonly ModelId s_base = ModelId.Parse("o/base"), s_other = ModelId.Parse("o/other"), s_ft = ModelId.Parse("o/ft"),
        s_mid = ModelId.Parse("o/mid");

    private static LineagePlanner Planner(int maxDepth = LineagePlanner.DefaultMaxDepth) => new(null, CodecOptions.Default, NullLogger.Instance, maxDepth);

    [Fact]
    public void Choose_Finetune_TakesItsBaseOverAnUnrelatedModel()
    {
        ushort[][] baseWeights = Weights(1);
        using LineagePlanner planner = Planner();
        planner.Add(s_other, Sketch(Weights(2)), 0);
        planner.Add(s_base, Sketch(baseWeights), 0);
        BaseDecision decision = planner.Choose(s_ft, Sketch(Moved(baseWeights, 0.05f, 3)), hint: null);
        Assert.Equal(s_base, decision.Base);
        Assert.Equal(1, decision.Depth);
        Assert.True(decision.EstimatedBytes < decision.SoloBytes * 0.8, $"{decision.EstimatedBytes} vs solo {decision.SoloBytes}");
        CandidateEstimate other = decision.Candidates.Single(c => c.Candidate == s_other);
        Assert.True(other.EstimatedBytes > decision.EstimatedBytes);
    }

    [Fact]
    public void Choose_UnrelatedModel_StoresAlone()
    {
        using LineagePlanner planner = Planner();
        planner.Add(s_base, Sketch(Weights(1)), 0);
        BaseDecision decision = planner.Choose(s_ft, Sketch(Weights(5)), hint: null);
        Assert.Null(decision.Base);
        Assert.Equal(0, decision.Depth);
        Assert.Contains("alone", decision.Reason);
    }

    [Fact]
    public void Choose_NoCandidateWithMatchingTensors_StoresAloneAndSaysWhy()
    {
        using LineagePlanner planner = Planner();
        BaseDecision decision = planner.Choose(s_ft, Sketch(Weights(1)), hint: null);
        Assert.Null(decision.Base);
        Assert.Empty(decision.Candidates);
        Assert.Contains("no stored model", decision.Reason);
    }

    [Fact]
    public void Choose_HintClearlyWorse_IsOverruledAndSaysSo()
    {
        ushort[][] baseWeights = Weights(1);
        using LineagePlanner planner = Planner();
        planner.Add(s_base, Sketch(baseWeights), 0);
        planner.Add(s_other, Sketch(Weights(2)), 0);
        BaseDecision decision = planner.Choose(s_ft, Sketch(Moved(baseWeights, 0.05f, 3)), new BaseHint(s_other, "base_ft.json"));
        Assert.Equal(s_base, decision.Base);
        Assert.Contains("base_ft.json names o/other", decision.Reason);
    }

    [Fact]
    public void Choose_HintAsGoodAsTheBest_IsKept()
    {
        // The middle model is next to the base, so the finetune of it is about as close to the base: the hint stands.
        ushort[][] baseWeights = Weights(1);
        ushort[][] mid = Moved(baseWeights, 0.01f, 4);
        using LineagePlanner planner = Planner();
        planner.Add(s_base, Sketch(baseWeights), 0);
        planner.Add(s_mid, Sketch(mid), 1);
        BaseDecision decision = planner.Choose(s_ft, Sketch(Moved(mid, 0.05f, 3)), new BaseHint(s_base, "model card"));
        Assert.Equal(s_base, decision.Base);
        Assert.StartsWith("model card names it", decision.Reason);
    }

    [Fact]
    public void Choose_FarFinetune_AloneWithoutAHintAndTheHintedBaseWithOne()
    {
        // Moved by about its own spread: coded against the base it costs what it costs alone, so either is fine.
        ushort[][] baseWeights = Weights(1);
        ModelSketch far = Sketch(Moved(baseWeights, 1.0f, 3));
        using LineagePlanner planner = Planner();
        planner.Add(s_base, Sketch(baseWeights), 0);
        Assert.Null(planner.Choose(s_ft, far, hint: null).Base);
        BaseDecision hinted = planner.Choose(s_ft, far, new BaseHint(s_base, "base_ft.json"));
        Assert.Equal(s_base, hinted.Base);
        Assert.True(hinted.EstimatedBytes <= hinted.SoloBytes * (1 + LineagePlanner.HintMargin), $"{hinted.EstimatedBytes} vs solo {hinted.SoloBytes}");
    }

    [Fact]
    public void Choose_ChainFinetune_TakesTheMiddleModel()
    {
        ushort[][] baseWeights = Weights(1);
        ushort[][] mid = Moved(baseWeights, 0.1f, 4);
        using LineagePlanner planner = Planner();
        planner.Add(s_base, Sketch(baseWeights), 0);
        planner.Add(s_mid, Sketch(mid), 1);
        BaseDecision decision = planner.Choose(s_ft, Sketch(Moved(mid, 0.03f, 3)), hint: null);
        Assert.Equal(s_mid, decision.Base);
        Assert.Equal(2, decision.Depth);
    }

    [Fact]
    public void Choose_BestCandidateAtTheDepthLimit_TakesAnAncestor()
    {
        ushort[][] baseWeights = Weights(1);
        ushort[][] mid = Moved(baseWeights, 0.1f, 4);
        using LineagePlanner planner = Planner(maxDepth: 1);
        planner.Add(s_base, Sketch(baseWeights), 0);
        planner.Add(s_mid, Sketch(mid), 1);
        BaseDecision decision = planner.Choose(s_ft, Sketch(Moved(mid, 0.03f, 3)), new BaseHint(s_mid, "base_ft.json"));
        Assert.Equal(s_base, decision.Base);
        Assert.Equal(1, decision.Depth);
        Assert.Contains("limit 1", decision.Reason);
    }

    [Fact]
    public void Choose_F16CopyOfABf16Base_PairsThroughConversion()
    {
        ushort[][] baseWeights = Weights(1);
        using LineagePlanner planner = Planner();
        planner.Add(s_base, Sketch(baseWeights), 0);
        BaseDecision decision = planner.Choose(s_ft, Sketch(baseWeights, DType.F16), hint: null);
        Assert.Equal(s_base, decision.Base);
        Assert.True(decision.EstimatedBytes < decision.SoloBytes / 10, $"{decision.EstimatedBytes} vs solo {decision.SoloBytes}");
    }

    [Fact]
    public void QuickBits_RanksLikeTheCodec()
    {
        ushort[][] baseWeights = Weights(1);
        ModelSketch near = Sketch(Moved(baseWeights, 0.02f, 2)), far = Sketch(Moved(baseWeights, 0.5f, 3)), target = Sketch(baseWeights);
        Assert.True(SketchScorer.QuickBits(target, near, out long paired) < SketchScorer.QuickBits(target, far, out _));
        Assert.True(paired > 0);
        using var scorer = new SketchScorer(CodecOptions.Default);
        Assert.True(scorer.CodedBytes(target, near) < scorer.CodedBytes(target, far));
        Assert.True(scorer.CodedBytes(target, far) <= scorer.CodedBytes(target, null) * 1.01);
    }

    [Fact]
    public void Constructor_DepthOutOfRange_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Planner(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Planner(LineagePlanner.MaxMaxDepth + 1));
    }
}
