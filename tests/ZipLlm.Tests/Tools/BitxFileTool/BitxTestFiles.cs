using System.Buffers.Binary;
using System.Text;
using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Tools.BitxFileTool;

/// <summary>A scratch folder for one test and tiny safetensors files built byte by byte.</summary>
internal sealed class BitxTestFiles : IDisposable
{
    public BitxTestFiles()
    {
        Folder = Path.Combine(Path.GetTempPath(), "zipllm-bitx-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
    }

    public string Folder { get; }

    public string PathOf(string name) => Path.Combine(Folder, name);

    public string Write(string name, byte[] bytes)
    {
        string path = PathOf(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Names of the files in the folder, sorted.</summary>
    public string[] FileNames() => [.. Directory.GetFiles(Folder).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal)];

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A safetensors file holding <paramref name="tensors"/> in order, its header padded with spaces to 8 bytes.</summary>
    public static byte[] Safetensors(params (string Name, DType DType, long[] Shape, byte[] Data)[] tensors)
    {
        var json = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach ((string name, DType dtype, long[] shape, byte[] data) in tensors)
        {
            json.Append($",\"{name}\":{{\"dtype\":\"{dtype.Name()}\",\"shape\":[{string.Join(',', shape)}],\"data_offsets\":[{offset},{offset + data.Length}]}}");
            offset += data.Length;
        }
        json.Append('}');
        while ((json.Length + SafetensorsFormat.LengthPrefixSize) % SafetensorsFormat.HeaderAlignment != 0)
        {
            json.Append(' ');
        }
        byte[] header = Encoding.UTF8.GetBytes(json.ToString());
        using var file = new MemoryStream();
        Span<byte> prefix = stackalloc byte[SafetensorsFormat.LengthPrefixSize];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        file.Write(prefix);
        file.Write(header);
        foreach ((_, _, _, byte[] data) in tensors)
        {
            file.Write(data);
        }
        return file.ToArray();
    }
}
