using System.Security.Cryptography;
using System.Text.Json;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Synthetic;

/// <summary>One tiny family shared by the read-only tests (generating it takes well under a second).</summary>
public sealed class TinyFamilyFixture : IDisposable
{
    private readonly TempDir _dir = new();

    public TinyFamilyFixture()
    {
        ModelDir = _dir.Combine("models");
        Result = SyntheticFamily.Generate(ModelDir, SyntheticSize.Tiny, seed: 1234);
    }

    public string ModelDir { get; }

    internal SyntheticFamilyResult Result { get; }

    internal string Folder(SyntheticModelKind kind) => Result.Get(kind).Folder;

    public void Dispose() => _dir.Dispose();
}

public class SyntheticFamilyTests(TinyFamilyFixture family) : IClassFixture<TinyFamilyFixture>
{
    [Fact]
    public void Generate_SameSeedTwice_SameBytes()
    {
        using var other = new TempDir();
        SyntheticFamily.Generate(other.Path, SyntheticSize.Tiny, seed: 1234, threads: 1);
        var expected = HashTree(family.ModelDir);
        var actual = HashTree(other.Path);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach ((string file, string hash) in expected)
        {
            Assert.True(hash == actual[file], $"{file} differs between two runs with the same seed");
        }
    }

    [Fact]
    public void Generate_DifferentSeed_DifferentWeights()
    {
        using var other = new TempDir();
        var result = SyntheticFamily.Generate(other.Path, SyntheticSize.Tiny, seed: 99);
        var a = ReadTensors(family.Folder(SyntheticModelKind.Base));
        var b = ReadTensors(result.Get(SyntheticModelKind.Base).Folder);
        Assert.NotEqual(a["model.embed_tokens.weight"].Bytes, b["model.embed_tokens.weight"].Bytes);
    }

    [Fact]
    public void Generate_Family_HasEveryKindWithIdsAndFolders()
    {
        var models = family.Result.Models;
        Assert.Equal(SyntheticFamily.DefaultKinds.Count, models.Count);
        Assert.Equal(SyntheticModelKind.Base, models[0].Kind);
        Assert.Contains(models, m => m.Id.Org.Contains('_'));
        foreach (SyntheticModel m in models)
        {
            Assert.Equal(Path.Combine(family.ModelDir, m.Id.FolderName), m.Folder);
            Assert.True(Directory.Exists(m.Folder));
            Assert.InRange(m.Bytes, 1, 1_000_000);
            Assert.Equal(m.Bytes, Directory.GetFiles(m.Folder).Sum(f => new FileInfo(f).Length));
            Assert.Empty(Directory.GetFiles(m.Folder, ".*"));
        }
    }

    [Fact]
    public void Generate_Roles_BaseListsAllFinetunesAndStandaloneIsAbsent()
    {
        var map = family.Result.BaseFt;
        ModelId baseId = family.Result.BaseId, fullFt = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune);
        Assert.Equal(ModelRoleKind.Base, map.RoleOf(baseId).Kind);
        foreach (SyntheticModel m in family.Result.Models.Skip(1))
        {
            // The re-sharded copy holds the full finetune's tensors and the chat model was trained from it: a chain.
            var expected = m.Kind switch
            {
                SyntheticModelKind.Standalone or SyntheticModelKind.ChannelScaled => ModelRole.Standalone,
                SyntheticModelKind.ReshardedFinetune or SyntheticModelKind.ChainFinetune => new ModelRole(ModelRoleKind.Finetune, fullFt),
                _ => new ModelRole(ModelRoleKind.Finetune, baseId),
            };
            Assert.Equal(expected, map.RoleOf(m.Id));
            Assert.Equal(expected.BaseId, m.BaseId);
        }
        Assert.Equal(family.Result.Models.Select(m => m.Id), family.Result.ModelList.Models);
    }

    [Fact]
    public void WriteModelListAndBaseFt_ThenLoad_RoundTrip()
    {
        using var dir = new TempDir();
        string list = dir.Combine("test_models.txt"), baseFt = dir.Combine("base_ft.json");
        family.Result.WriteModelList(list);
        family.Result.WriteBaseFt(baseFt);
        Assert.StartsWith(SyntheticFamily.ListMarker + "\n", File.ReadAllText(list));
        Assert.Equal(family.Result.ModelList.Models, ModelList.Load(list).Models);
        Assert.Equal(family.Result.BaseFt.ToJson(), BaseFtMap.Load(baseFt).ToJson());
    }

    [Fact]
    public void Generate_EveryShard_ParsesAndMatchesIndex()
    {
        foreach (SyntheticModel m in family.Result.Models)
        {
            var shards = Directory.GetFiles(m.Folder, "*.safetensors");
            Assert.NotEmpty(shards);
            var names = new Dictionary<string, string>();
            long total = 0;
            foreach (string shard in shards)
            {
                using var file = SafetensorsFile.Open(shard);
                Assert.Equal(file.Length, file.Header.FileLength);
                foreach (TensorInfo t in file.Header.Tensors)
                {
                    names.Add(t.Name, Path.GetFileName(shard));
                    total += t.Length;
                }
            }
            string index = Path.Combine(m.Folder, "model.safetensors.index.json");
            if (m.Kind == SyntheticModelKind.Standalone)
            {
                Assert.False(File.Exists(index));
                continue;
            }
            Assert.True(shards.Length >= 2, $"{m.Id} has {shards.Length} shard(s)");
            using var json = JsonDocument.Parse(File.ReadAllBytes(index));
            Assert.Equal(total, json.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
            var weightMap = json.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
            Assert.Equal(names.OrderBy(p => p.Key), weightMap.OrderBy(p => p.Key)!);
            foreach (string small in (string[])["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"])
            {
                using var _ = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(m.Folder, small)));
            }
        }
    }

    [Fact]
    public void Base_Layout_IsLlamaShapedBf16InTwoShards()
    {
        string folder = family.Folder(SyntheticModelKind.Base);
        Assert.Equal(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
            Directory.GetFiles(folder, "*.safetensors").Select(Path.GetFileName).Order());
        var tensors = ReadTensors(folder);
        Assert.All(tensors.Values, t => Assert.Equal(DType.BF16, t.Info.DType));
        foreach (string name in (string[])[
            "model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
            "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
            "model.layers.1.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight",
            "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.weight",
            "model.layers.1.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight"])
        {
            Assert.True(tensors.ContainsKey(name), name);
        }
        using var card = File.OpenText(Path.Combine(folder, "README.md"));
        Assert.DoesNotContain("base_model:", card.ReadToEnd());
    }

    [Fact]
    public void Base_Values_HaveRealisticStatistics()
    {
        var tensors = ReadTensors(family.Folder(SyntheticModelKind.Base));
        float[] matrix = Bf16Values(tensors["model.layers.0.mlp.up_proj.weight"].Bytes);
        (double mean, double std) = MeanStd(matrix);
        Assert.InRange(mean, -0.002, 0.002);
        Assert.InRange(std, 0.018, 0.022);
        float[] norm = Bf16Values(tensors["model.layers.0.input_layernorm.weight"].Bytes);
        Assert.InRange(MeanStd(norm).Mean, 0.97, 1.03);
    }

    [Fact]
    public void FullFinetune_EveryTensor_CloseToBaseWithLowBitXors()
    {
        var baseTensors = ReadTensors(family.Folder(SyntheticModelKind.Base));
        var ft = ReadTensors(family.Folder(SyntheticModelKind.FullFinetune));
        Assert.Equal(baseTensors.Keys.Order(), ft.Keys.Order());
        long changed = 0, exponentChanged = 0, total = 0;
        foreach ((string name, var b) in baseTensors)
        {
            Assert.True(b.Info.SameLayoutAs(ft[name].Info), name);
            Assert.NotEqual(b.Bytes, ft[name].Bytes);
            for (int i = 0; i < b.Bytes.Length; i += 2)
            {
                int xor = (b.Bytes[i] | b.Bytes[i + 1] << 8) ^ (ft[name].Bytes[i] | ft[name].Bytes[i + 1] << 8);
                total++;
                changed += xor != 0 ? 1 : 0;
                exponentChanged += (xor & 0x7F80) != 0 ? 1 : 0;
            }
        }
        Assert.InRange(changed / (double)total, 0.5, 0.95);
        Assert.InRange(exponentChanged / (double)total, 0.001, 0.1);
    }

    [Fact]
    public void FarFinetune_MovesWeightsAsFarAsTheirOwnSpread()
    {
        var baseTensors = ReadTensors(family.Folder(SyntheticModelKind.Base));
        var far = ReadTensors(family.Folder(SyntheticModelKind.FarFinetune));
        float[] b = Bf16Values(baseTensors["model.layers.0.mlp.up_proj.weight"].Bytes);
        float[] f = Bf16Values(far["model.layers.0.mlp.up_proj.weight"].Bytes);
        double[] delta = b.Zip(f, (x, y) => (double)(y - x)).ToArray();
        double deltaStd = Math.Sqrt(delta.Average(d => d * d));
        Assert.InRange(deltaStd / MeanStd(b).Std, 0.9, 1.1);
        // About a quarter of the signs flip (arccos(1/sqrt 2) / pi), where a near finetune flips almost none.
        Assert.InRange(b.Zip(f).Count(p => Math.Sign(p.First) != Math.Sign(p.Second)) / (double)b.Length, 0.2, 0.35);
    }

    [Fact]
    public void Generate_Retrained_AddsItLastUnderTheBaseAndLeavesTheOthersAsTheyWere()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult result = SyntheticFamily.Generate(dir.Path, SyntheticSize.Tiny, seed: 1234, retrained: true);
        Assert.Equal(SyntheticFamily.DefaultKinds.Count + 1, result.Models.Count);
        SyntheticModel retrained = result.Models[^1];
        Assert.Equal(SyntheticModelKind.RetrainedFinetune, retrained.Kind);
        Assert.Equal(new ModelRole(ModelRoleKind.Finetune, result.BaseId), result.BaseFt.RoleOf(retrained.Id));
        Assert.DoesNotContain(family.Result.Models, m => m.Kind == SyntheticModelKind.RetrainedFinetune);
        var expected = HashTree(family.ModelDir);
        var actual = HashTree(dir.Path);
        Assert.All(expected, pair => Assert.Equal(pair.Value, actual[pair.Key]));
        Assert.Contains(actual.Keys, k => k.StartsWith(retrained.Id.FolderName, StringComparison.Ordinal));
    }

    [Fact]
    public void Retrained_WeightsMoveByHalfToFourFifthsOfThemselvesAndKeepMostSigns()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult result = SyntheticFamily.Generate(dir.Path, SyntheticSize.Tiny, seed: 1234, retrained: true);
        var baseTensors = ReadTensors(result.Get(SyntheticModelKind.Base).Folder);
        var retrained = ReadTensors(result.Get(SyntheticModelKind.RetrainedFinetune).Folder);
        Assert.Equal(baseTensors.Keys.Order(), retrained.Keys.Order());
        foreach (string name in (string[])["model.layers.0.mlp.up_proj.weight", "model.layers.1.self_attn.q_proj.weight", "lm_head.weight"])
        {
            float[] b = Bf16Values(baseTensors[name].Bytes), r = Bf16Values(retrained[name].Bytes);
            // The relative move |r/b - 1| over weights that kept their sign: its spread is the tensor's noise, 0.5 to 0.8.
            double[] relative = b.Zip(r).Where(p => p.First != 0 && Math.Sign(p.First) == Math.Sign(p.Second)).Select(p => p.Second / (double)p.First - 1).ToArray();
            double spread = Math.Sqrt(relative.Average(x => x * x));
            Assert.InRange(spread, 0.35, 0.8);
            // Flipped signs: the 3% drawn, and the noise's own crossings of zero (a few percent at 50-80%).
            double flipped = b.Zip(r).Count(p => p.First != 0 && Math.Sign(p.First) == -Math.Sign(p.Second)) / (double)b.Length;
            Assert.InRange(flipped, 0.03, 0.15);
        }
    }

    [Fact]
    public void ChannelScaled_RowsAndColumnsHaveDifferentScales()
    {
        var tensors = ReadTensors(family.Folder(SyntheticModelKind.ChannelScaled));
        var (info, bytes) = (tensors["model.layers.0.mlp.up_proj.weight"].Info, tensors["model.layers.0.mlp.up_proj.weight"].Bytes);
        float[] values = Bf16Values(bytes);
        int rows = (int)info.Shape[0], columns = (int)info.Shape[1];
        double[] rowRms = Enumerable.Range(0, rows).Select(r => Math.Sqrt(values.AsSpan(r * columns, columns).ToArray().Average(v => (double)v * v))).ToArray();
        double[] columnRms = Enumerable.Range(0, columns).Select(c => Math.Sqrt(Enumerable.Range(0, rows).Average(r => (double)values[r * columns + c] * values[r * columns + c]))).ToArray();
        Assert.True(rowRms.Max() / rowRms.Min() > 2, $"rows from {rowRms.Min()} to {rowRms.Max()}");
        Assert.True(columnRms.Max() / columnRms.Min() > 2, $"columns from {columnRms.Min()} to {columnRms.Max()}");
    }

    [Fact]
    public void FullFinetune_Card_NamesBaseModel()
    {
        string card = File.ReadAllText(Path.Combine(family.Folder(SyntheticModelKind.FullFinetune), "README.md"));
        Assert.StartsWith("---\n", card);
        Assert.Contains($"\nbase_model: {family.Result.BaseId}\n", card);
    }

    [Fact]
    public void LoraFinetune_OnlyQAndVProjDiffer()
    {
        var baseTensors = ReadTensors(family.Folder(SyntheticModelKind.Base));
        var lora = ReadTensors(family.Folder(SyntheticModelKind.LoraFinetune));
        Assert.Equal(baseTensors.Keys.Order(), lora.Keys.Order());
        foreach ((string name, var b) in baseTensors)
        {
            bool target = name.EndsWith("q_proj.weight", StringComparison.Ordinal) || name.EndsWith("v_proj.weight", StringComparison.Ordinal);
            if (target)
            {
                Assert.NotEqual(b.Bytes, lora[name].Bytes);
                float[] x = Bf16Values(b.Bytes), y = Bf16Values(lora[name].Bytes);
                Assert.True(x.Zip(y).Max(p => Math.Abs(p.First - p.Second)) < 0.02, name);
            }
            else
            {
                Assert.Equal(b.Bytes, lora[name].Bytes);
            }
        }
    }

    [Fact]
    public void LoraFinetune_QProj_MostValuesChange()
    {
        var baseTensors = ReadTensors(family.Folder(SyntheticModelKind.Base));
        var lora = ReadTensors(family.Folder(SyntheticModelKind.LoraFinetune));
        const string name = "model.layers.0.self_attn.q_proj.weight";
        float[] delta = Bf16Values(lora[name].Bytes).Zip(Bf16Values(baseTensors[name].Bytes), (a, b) => a - b).ToArray();
        Assert.True(delta.Count(d => d != 0) > delta.Length / 2);
    }

    [Fact]
    public void Resharded_SameTensorsAndBytesAsFullFinetune_InOtherLayout()
    {
        string fullFolder = family.Folder(SyntheticModelKind.FullFinetune);
        string reshardFolder = family.Folder(SyntheticModelKind.ReshardedFinetune);
        var full = ReadTensors(fullFolder);
        var resharded = ReadTensors(reshardFolder);
        Assert.Equal(full.Keys.Order(), resharded.Keys.Order());
        foreach ((string name, var t) in full)
        {
            Assert.Equal(t.Bytes, resharded[name].Bytes);
            Assert.True(t.Info.SameLayoutAs(resharded[name].Info));
        }
        Assert.NotEqual(
            Directory.GetFiles(fullFolder, "*.safetensors").Length,
            Directory.GetFiles(reshardFolder, "*.safetensors").Length);
        Assert.NotEqual(DataOrder(fullFolder), DataOrder(reshardFolder));
    }

    [Fact]
    public void VocabExtended_EmbeddingsHaveExtraRows_OthersCloseToBase()
    {
        var baseTensors = ReadTensors(family.Folder(SyntheticModelKind.Base));
        var ext = ReadTensors(family.Folder(SyntheticModelKind.VocabExtendedFinetune));
        foreach ((string name, var b) in baseTensors)
        {
            var e = ext[name];
            if (name is "model.embed_tokens.weight" or "lm_head.weight")
            {
                Assert.True(e.Info.Shape[0] > b.Info.Shape[0], name);
                Assert.Equal(b.Info.Shape[1], e.Info.Shape[1]);
            }
            else
            {
                Assert.True(b.Info.SameLayoutAs(e.Info), name);
                Assert.NotEqual(b.Bytes, e.Bytes);
                float[] x = Bf16Values(b.Bytes), y = Bf16Values(e.Bytes);
                Assert.True(x.Zip(y).Max(p => Math.Abs(p.First - p.Second)) < 0.05, name);
            }
        }
        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(family.Folder(SyntheticModelKind.VocabExtendedFinetune), "config.json")));
        Assert.Equal(ext["lm_head.weight"].Info.Shape[0], config.RootElement.GetProperty("vocab_size").GetInt64());
    }

    [Fact]
    public void F16Copy_EveryTensorIsBaseConvertedToF16()
    {
        var baseTensors = ReadTensors(family.Folder(SyntheticModelKind.Base));
        var f16 = ReadTensors(family.Folder(SyntheticModelKind.F16Copy));
        Assert.Equal(baseTensors.Keys.Order(), f16.Keys.Order());
        foreach ((string name, var b) in baseTensors)
        {
            Assert.Equal(DType.F16, f16[name].Info.DType);
            Assert.Equal(b.Info.Shape, f16[name].Info.Shape);
            float[] x = Bf16Values(b.Bytes);
            for (int i = 0; i < x.Length; i++)
            {
                Half h = BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(f16[name].Bytes, i * 2));
                Assert.Equal((Half)x[i], h);
            }
        }
    }

    [Fact]
    public void ReUpload_EveryFileByteIdenticalToBase()
    {
        var baseHashes = HashTree(family.Folder(SyntheticModelKind.Base));
        var copyHashes = HashTree(family.Folder(SyntheticModelKind.ReUpload));
        Assert.Equal(baseHashes.OrderBy(p => p.Key), copyHashes.OrderBy(p => p.Key));
    }

    [Fact]
    public void Standalone_HasAwkwardTensorsAndMetadata()
    {
        string path = Path.Combine(family.Folder(SyntheticModelKind.Standalone), "model.safetensors");
        using var file = SafetensorsFile.Open(path);
        var tensors = file.Header.Tensors;
        Assert.NotNull(file.Header.Metadata);
        Assert.Equal("pt", file.Header.Metadata!["format"]);
        Assert.Contains(tensors, t => t.DType == DType.U8 && t.Shape.SequenceEqual([7L]));
        Assert.Contains(tensors, t => t.DType == DType.I8 && t.Shape.SequenceEqual([3L]));
        Assert.Contains(tensors, t => t.DType == DType.BOOL);
        Assert.Contains(tensors, t => t.Length == 0 && t.Shape.Contains(0L));
        Assert.Contains(tensors, t => t.Shape.Length == 0 && t.DType == DType.F32);
        Assert.Contains(tensors, t => t.DType == DType.F32 && t.ElementCount % 2 == 1 && t.ElementCount > 100);
        Assert.Contains(tensors, t => t.Length % 2 == 1);
        Assert.Contains(tensors, t => t.DType == DType.BF16);
        Assert.DoesNotContain(tensors, t => t.DType == DType.BF16 && t.ElementCount > 16);
        byte[] mask = new byte[5];
        file.ReadTensor(tensors.Single(t => t.DType == DType.BOOL), 0, mask);
        Assert.All(mask, b => Assert.True(b <= 1));
    }

    [Fact]
    public void Generate_Rerun_SkipsCompleteModelsAndRewritesBrokenOne()
    {
        using var dir = new TempDir();
        var first = SyntheticFamily.Generate(dir.Path, SyntheticSize.Tiny, seed: 5);
        Assert.All(first.Models, m => Assert.True(m.Generated));
        var before = HashTree(dir.Path);

        var second = SyntheticFamily.Generate(dir.Path, SyntheticSize.Tiny, seed: 5);
        Assert.All(second.Models, m => Assert.False(m.Generated));

        string lora = first.Get(SyntheticModelKind.LoraFinetune).Folder;
        File.Delete(Path.Combine(lora, "model-00002-of-00002.safetensors"));
        File.WriteAllText(Path.Combine(lora, ".model-00002-of-00002.safetensors.0123.tmp"), "left by a crash");
        var third = SyntheticFamily.Generate(dir.Path, SyntheticSize.Tiny, seed: 5);
        Assert.Equal([SyntheticModelKind.LoraFinetune], third.Models.Where(m => m.Generated).Select(m => m.Kind));
        Assert.Equal(before.OrderBy(p => p.Key), HashTree(dir.Path).OrderBy(p => p.Key));
    }

    [Fact]
    public void Generate_OtherSeedInSameFolder_Regenerates()
    {
        using var dir = new TempDir();
        SyntheticFamily.Generate(dir.Path, SyntheticSize.Tiny, seed: 5);
        var again = SyntheticFamily.Generate(dir.Path, SyntheticSize.Tiny, seed: 6);
        Assert.All(again.Models, m => Assert.True(m.Generated));
    }

    [Fact]
    public void Generate_Cancelled_Throws()
    {
        using var dir = new TempDir();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            SyntheticFamily.Generate(dir.Path, SyntheticSize.Tiny, cancellationToken: new CancellationToken(true)));
    }

    [Fact]
    public void Generate_BadArguments_Throw()
    {
        Assert.Throws<ArgumentException>(() => SyntheticFamily.Generate(""));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticFamily.Generate("x", threads: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticFamily.Generate("x", (SyntheticSize)17));
    }

    [Theory]
    [InlineData("tiny", SyntheticSize.Tiny)]
    [InlineData("Small", SyntheticSize.Small)]
    [InlineData("default", SyntheticSize.Default)]
    internal void SyntheticSizes_Parse_KnownNames(string name, SyntheticSize expected)
    {
        Assert.Equal(expected, SyntheticSizes.Parse(name));
        Assert.Equal(name.ToLowerInvariant(), expected.Name());
    }

    [Fact]
    public void SyntheticSizes_Parse_UnknownName_Throws() =>
        Assert.Throws<UsageException>(() => SyntheticSizes.Parse("huge"));

    internal static Dictionary<string, string> HashTree(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories).ToDictionary(
            f => Path.GetRelativePath(root, f),
            f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    internal static Dictionary<string, (TensorInfo Info, byte[] Bytes)> ReadTensors(string folder)
    {
        var result = new Dictionary<string, (TensorInfo, byte[])>();
        foreach (string shard in Directory.GetFiles(folder, "*.safetensors"))
        {
            using var file = SafetensorsFile.Open(shard);
            foreach (TensorInfo t in file.Header.Tensors)
            {
                var bytes = new byte[t.Length];
                file.ReadTensor(t, 0, bytes);
                result.Add(t.Name, (t, bytes));
            }
        }
        return result;
    }

    private static List<string> DataOrder(string folder)
    {
        var order = new List<string>();
        foreach (string shard in Directory.GetFiles(folder, "*.safetensors").Order())
        {
            using var file = SafetensorsFile.Open(shard);
            order.AddRange(file.Header.Tensors.Select(t => t.Name));
        }
        return order;
    }

    private static float[] Bf16Values(byte[] bytes)
    {
        var values = new float[bytes.Length / 2];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = BitConverter.UInt32BitsToSingle((uint)(bytes[2 * i] | bytes[2 * i + 1] << 8) << 16);
        }
        return values;
    }

    private static (double Mean, double Std) MeanStd(float[] values)
    {
        double mean = values.Average(v => (double)v);
        return (mean, Math.Sqrt(values.Average(v => (v - mean) * (v - mean))));
    }
}
