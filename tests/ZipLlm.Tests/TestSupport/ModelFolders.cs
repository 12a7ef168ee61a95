using ZipLlm.Safetensors;
using ZipLlm.Tests.Codecs;

namespace ZipLlm.Tests.TestSupport;

/// <summary>Builds small model folders by hand for store tests.</summary>
internal static class ModelFolders
{
    /// <summary>Writes a safetensors file with the given tensors, in the order given.</summary>
    public static void WriteSafetensors(string path, IReadOnlyList<(string Name, DType DType, long[] Shape, byte[] Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = SafetensorsHeader.Create(tensors.Select(t => (t.Name, t.DType, t.Shape)), metadata);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var stream = File.Create(path);
        header.WriteTo(stream);
        foreach (TensorInfo info in header.Tensors)
        {
            stream.Write(tensors.Single(t => t.Name == info.Name).Data);
        }
    }

    /// <summary>Random BF16 tensors shaped like a tiny transformer.</summary>
    public static List<(string Name, DType DType, long[] Shape, byte[] Data)> Bf16Layers(Random random, int layers, int width)
    {
        var tensors = new List<(string, DType, long[], byte[])>();
        for (int layer = 0; layer < layers; layer++)
        {
            foreach (string proj in new[] { "q_proj", "k_proj", "v_proj" })
            {
                tensors.Add(($"model.layers.{layer}.self_attn.{proj}.weight", DType.BF16, [width, width], TensorData.Sample(random, DType.BF16, width * width * 2)));
            }
            tensors.Add(($"model.layers.{layer}.input_layernorm.weight", DType.BF16, [width], TensorData.Sample(random, DType.BF16, width * 2)));
        }
        return tensors;
    }

    /// <summary>The same tensors with small finetune-like changes.</summary>
    public static List<(string Name, DType DType, long[] Shape, byte[] Data)> Finetune(Random random, IEnumerable<(string Name, DType DType, long[] Shape, byte[] Data)> tensors) =>
        tensors.Select(t => (t.Name, t.DType, t.Shape, TensorData.Perturb(random, t.Data, t.DType))).ToList();

    /// <summary>Every file under <paramref name="folder"/> with its bytes, keyed by relative path.</summary>
    public static SortedDictionary<string, byte[]> Snapshot(string folder) =>
        new(Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .ToDictionary(p => Path.GetRelativePath(folder, p), File.ReadAllBytes), StringComparer.Ordinal);
}
