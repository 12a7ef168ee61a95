using System.Buffers.Binary;
using System.Text;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary>
/// The tiny synthetic family and one 8 MiB model (big enough for aria2c to split), stored by the CLI as a process,
/// served by two <c>zipllm serve</c> processes: one open, one with a token file.
/// </summary>
public sealed class ServedFamily : IAsyncLifetime
{
    /// <summary>The model with one large file.</summary>
    public const string BigModel = "big/blob";

    /// <summary>Size of its safetensors file's data.</summary>
    public const int BigBytes = 8 << 20;

    public const string AcmeToken = "tok_synthetic_0123456789";
    public const string OtherToken = "tok_other_0123456789";

    private readonly TempDir _dir = new();

    internal TempDir Dir => _dir;

    internal SyntheticFamilyResult Family { get; private set; } = null!;

    internal string Config { get; private set; } = "";

    internal ServeProcess Open { get; private set; } = null!;

    internal ServeProcess Guarded { get; private set; } = null!;

    /// <summary>The original folder of a stored model.</summary>
    internal string FolderOf(string modelId) =>
        modelId == BigModel ? _dir.Combine("models", "big_blob") : Family.Models.Single(m => m.Id.ToString() == modelId).Folder;

    public async Task InitializeAsync()
    {
        Family = CompressJobTests.WriteFamily(_dir);
        WriteBigModel(_dir.Combine("models", "big_blob"));
        File.AppendAllText(_dir.Combine("test_models.txt"), BigModel + "\n");
        Config = _dir.Combine("config.json");
        CliResult compress = await CliProcess.RunAsync(["compress", Config, "-q"], timeout: TimeSpan.FromMinutes(3));
        Assert.True(compress.ExitCode == 0, compress.StandardError);
        File.WriteAllText(_dir.Combine("tokens.txt"), $"{AcmeToken} synthetic/*\n{OtherToken} other/*\n");
        Open = ServeProcess.Start(Config);
        Guarded = ServeProcess.Start(Config, "--tokens", _dir.Combine("tokens.txt"));
    }

    public Task DisposeAsync()
    {
        Open?.Dispose();
        Guarded?.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>A safetensors file of one U8 tensor of <see cref="BigBytes"/> varied bytes, and a config.json.</summary>
    private static void WriteBigModel(string folder)
    {
        Directory.CreateDirectory(folder);
        string json = $"{{\"w\":{{\"dtype\":\"U8\",\"shape\":[{BigBytes}],\"data_offsets\":[0,{BigBytes}]}}}}";
        json = json.PadRight((json.Length + 7) / 8 * 8);
        var rng = new Random(7);
        byte[] data = new byte[BigBytes];
        rng.NextBytes(data);
        using (FileStream file = File.Create(Path.Combine(folder, "model.safetensors")))
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)json.Length);
            file.Write(prefix);
            file.Write(Encoding.ASCII.GetBytes(json));
            file.Write(data);
        }
        File.WriteAllText(Path.Combine(folder, "config.json"), "{\"model_type\": \"blob\"}\n");
    }
}
