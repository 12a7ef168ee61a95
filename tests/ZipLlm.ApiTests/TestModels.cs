using System.Buffers.Binary;
using System.Text;

namespace ZipLlm.ApiTests;

/// <summary>One tensor of a test model: its name, dtype, shape and bytes.</summary>
public sealed record TestTensor(string Name, string DType, long[] Shape, byte[] Bytes);

/// <summary>
/// A tiny family written by hand, byte by byte, as safetensors files (no engine code): a base and a finetune whose
/// 16-bit tensors moved a little (stored as deltas), one tensor left as it was (deduplicated), a tensor of more than
/// one 4 MiB chunk, an empty tensor, a scalar, an odd byte length, <c>__metadata__</c> and header padding.
/// </summary>
public sealed class TestModels : IDisposable
{
    public const string BaseId = "test/base";
    public const string FinetuneId = "test/finetune";
    public const string WeightsFile = "model.safetensors";
    public const string ConfigFile = "config.json";

    public TestModels()
    {
        Root = Path.Combine(Path.GetTempPath(), "zipllm-api-" + Guid.NewGuid().ToString("N"));
        var random = new Random(1234);
        BaseTensors =
        [
            new("embed", "BF16", [2304, 1024], Bf16(random, 2304 * 1024)),
            new("layer.0.weight", "BF16", [256, 256], Bf16(random, 256 * 256)),
            new("empty", "BF16", [0, 16], []),
            new("frozen", "F32", [64, 64], Bytes(random, 64 * 64 * 4)),
            new("scale", "F32", [], Bytes(random, 4)),
            new("mask", "BOOL", [7], [1, 0, 1, 1, 0, 0, 1]),
        ];
        FinetuneTensors = BaseTensors.Select(t => t.DType == "BF16" ? t with { Bytes = Nudged(random, t.Bytes) } : t).ToArray();
        FinetuneTensors[4] = FinetuneTensors[4] with { Bytes = Bytes(random, 4) };
        BaseFolder = Write("test_base", BaseTensors, """{"model_type": "llama", "hidden_size": 1024}""");
        FinetuneFolder = Write("test_finetune", FinetuneTensors, """{"model_type": "llama", "hidden_size": 1024, "finetuned": true}""");
        StoreFolder = Path.Combine(Root, "store");
    }

    public string Root { get; }

    public string BaseFolder { get; }

    public string FinetuneFolder { get; }

    public string StoreFolder { get; }

    public TestTensor[] BaseTensors { get; }

    public TestTensor[] FinetuneTensors { get; }

    /// <summary>Offsets in the weights file where the header ends and each tensor starts (the boundaries reads must cross).</summary>
    public static long[] Boundaries(string weightsPath, IReadOnlyList<TestTensor> tensors)
    {
        byte[] prefix = new byte[8];
        using (FileStream file = File.OpenRead(weightsPath))
        {
            file.ReadExactly(prefix);
        }
        long at = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        var boundaries = new List<long> { 8, at };
        foreach (TestTensor tensor in tensors)
        {
            at += tensor.Bytes.Length;
            boundaries.Add(at);
        }
        return [.. boundaries];
    }

    /// <summary>Writes a model folder <c>models/FOLDERNAME</c> of one weights file and a config; its path.</summary>
    public string Write(string folderName, IReadOnlyList<TestTensor> tensors, string config)
    {
        string folder = Path.Combine(Root, "models", folderName);
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, WeightsFile), Safetensors(tensors));
        File.WriteAllText(Path.Combine(folder, ConfigFile), config);
        return folder;
    }

    /// <summary>A safetensors file: little-endian header length, JSON header padded with spaces to 8 bytes, the tensors in order.</summary>
    public static byte[] Safetensors(IReadOnlyList<TestTensor> tensors)
    {
        var json = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach (TestTensor t in tensors)
        {
            json.Append($",\"{t.Name}\":{{\"dtype\":\"{t.DType}\",\"shape\":[{string.Join(',', t.Shape)}],\"data_offsets\":[{offset},{offset + t.Bytes.Length}]}}");
            offset += t.Bytes.Length;
        }
        json.Append('}');
        while ((json.Length + 8) % 8 != 0)
        {
            json.Append(' ');
        }
        byte[] header = Encoding.UTF8.GetBytes(json.ToString());
        using var output = new MemoryStream();
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        output.Write(prefix);
        output.Write(header);
        foreach (TestTensor t in tensors)
        {
            output.Write(t.Bytes);
        }
        return output.ToArray();
    }

    /// <summary>BF16 weights as a model's are: small normal values (their exponents cluster, their mantissas are noise).</summary>
    private static byte[] Bf16(Random random, int count)
    {
        byte[] bytes = new byte[count * 2];
        for (int i = 0; i < count; i++)
        {
            float value = (float)(Gaussian(random) * 0.02);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), (ushort)(BitConverter.SingleToUInt32Bits(value) >> 16));
        }
        return bytes;
    }

    /// <summary>A finetune's weights: each moved by about a hundredth of itself, so most keep their exponent.</summary>
    public static byte[] Nudged(Random random, byte[] bf16)
    {
        byte[] bytes = (byte[])bf16.Clone();
        for (int i = 0; i < bytes.Length; i += 2)
        {
            float value = BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i)) << 16);
            value *= (float)(1 + Gaussian(random) * 0.01);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i), (ushort)(BitConverter.SingleToUInt32Bits(value) >> 16));
        }
        return bytes;
    }

    private static byte[] Bytes(Random random, int count)
    {
        byte[] bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The family stored once for the tests that only read.</summary>
public sealed class StoredFamily : IAsyncLifetime
{
    public TestModels Models { get; } = new();

    public ZipLlmStore Store { get; private set; } = null!;

    public CompressSummary BaseSummary { get; private set; } = null!;

    public CompressSummary FinetuneSummary { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Store = ZipLlmStore.Open(Models.StoreFolder, new ZipLlmStoreOptions { CreateIfMissing = true, Threads = 2 });
        BaseSummary = await Store.CompressAsync(Models.BaseFolder, TestModels.BaseId);
        FinetuneSummary = await Store.CompressAsync(Models.FinetuneFolder, TestModels.FinetuneId, TestModels.BaseId);
    }

    public async Task DisposeAsync()
    {
        await Store.DisposeAsync();
        Models.Dispose();
    }
}
