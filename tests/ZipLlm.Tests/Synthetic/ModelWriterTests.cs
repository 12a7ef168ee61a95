using System.Security.Cryptography;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Synthetic;

public class ModelWriterTests
{
    [Fact]
    public void Write_MultiBlockTensor_SameBytesForAnyThreadCount()
    {
        // 3 x 100 000 elements spans two fill blocks, so the parallel path runs.
        var tensor = new LlamaTensor("w", [3, 100_000], 0f, 0.02f, 0.0002f);
        Assert.True(tensor.ElementCount > TensorFill.BlockElements);
        using var dir = new TempDir();
        string[] hashes = new string[3];
        int[] threads = [1, 2, 5];
        for (int i = 0; i < threads.Length; i++)
        {
            var fill = new LlamaFill(3, tensor, LlamaVariant.FullFinetune);
            var shard = ShardFile.Create("model.safetensors", [new PlannedTensor("w", DType.BF16, tensor.Shape, fill)], null);
            var plan = new ModelPlan(ModelId.Parse("o/m"), dir.Combine($"t{i}"), [shard]);
            Assert.False(ModelWriter.IsComplete(plan));
            ModelWriter.Write(plan, threads[i], CancellationToken.None);
            Assert.True(ModelWriter.IsComplete(plan));
            string path = Path.Combine(plan.Folder, "model.safetensors");
            Assert.Equal(shard.Length, new FileInfo(path).Length);
            hashes[i] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
        }
        Assert.Equal(hashes[0], hashes[1]);
        Assert.Equal(hashes[0], hashes[2]);
    }

    [Fact]
    public void LlamaFill_LongerTensor_SharesPrefixWithShorter()
    {
        // The vocabulary-extended embeddings rely on this: extra rows append, earlier rows keep their base values.
        var shortTensor = new LlamaTensor("e", [4, 8], 0f, 0.02f, 0f);
        var longTensor = shortTensor with { Shape = [6, 8] };
        byte[] a = new byte[64], b = new byte[96];
        new LlamaFill(1, shortTensor, LlamaVariant.Base).Fill(0, 32, a);
        new LlamaFill(1, longTensor, LlamaVariant.Base).Fill(0, 48, b);
        Assert.Equal(a, b[..64]);
    }

    [Theory]
    [InlineData(0f, (ushort)0x0000)]
    [InlineData(1f, (ushort)0x3F80)]
    [InlineData(-2f, (ushort)0xC000)]
    [InlineData(1.00390625f, (ushort)0x3F80)] // exactly half an ulp above 1: ties to even (down)
    [InlineData(1.01171875f, (ushort)0x3F82)] // 1 + 1.5 ulp: ties to even (up)
    [InlineData(float.PositiveInfinity, (ushort)0x7F80)]
    public void ToBf16_Values_RoundToNearestEven(float value, ushort expected) =>
        Assert.Equal(expected, FloatBits.ToBf16(value));

    [Fact]
    public void ToBf16_NaN_StaysNaN() =>
        Assert.True(float.IsNaN(FloatBits.FromBf16(FloatBits.ToBf16(float.NaN))));

    [Fact]
    public void Xoshiro_NextNormal_HasUnitVariance()
    {
        var rng = new Xoshiro256(7);
        double sum = 0, sumSquares = 0;
        const int n = 200_000;
        for (int i = 0; i < n; i++)
        {
            double x = rng.NextNormal();
            sum += x;
            sumSquares += x * x;
        }
        Assert.InRange(sum / n, -0.01, 0.01);
        Assert.InRange(sumSquares / n, 0.98, 1.02);
    }
}
