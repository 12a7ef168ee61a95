// Uses a ZipLLM store from a program, without the zipllm command: lists the models, restores one, reads one of its
// tensors alone, and streams one of its files, hashing it, without restoring the rest.
//
//   dotnet run --project examples/RestoreExample -- STORE [org/model] [OUT]
//
// STORE is a store folder (a config's storage_dir, such as ./store after `./zipllm compress config.json`) or
// s3://BUCKET/PREFIX. The model defaults to the first stored one; OUT to a new temporary folder.
using System.Diagnostics;
using System.Security.Cryptography;
using ZipLlm;

if (args.Length is < 1 or > 3 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: RestoreExample STORE [org/model] [OUT]");
    return args.Length == 0 ? 2 : 0;
}

try
{
    await using ZipLlmStore store = ZipLlmStore.Open(args[0]);

    // 1. What the store holds.
    IReadOnlyList<StoredModel> models = await store.ListModelsAsync();
    Console.WriteLine($"{store.Location}: {models.Count} models");
    foreach (StoredModel m in models)
    {
        string role = m.BaseId is null ? m.Role.ToString().ToLowerInvariant() : $"finetune of {m.BaseId}";
        Console.WriteLine($"  {m.Id,-40} {role,-40} {m.Files.Count,3} files {MB(m.OriginalBytes),10} in {MB(m.AddedBytes),10} stored");
    }
    if (models.Count == 0)
    {
        return 0;
    }

    // 2. Restore one model: every file checked against its recorded hash before it is put in place.
    StoredModel model = args.Length > 1 ? store.GetModel(args[1]) : models[0];
    string output = args.Length > 2 ? args[2] : Path.Combine(Path.GetTempPath(), "zipllm-restore-example-" + Guid.NewGuid().ToString("N")[..8]);
    RestoreSummary restored = await store.RestoreAsync(model.Id, output);
    Console.WriteLine($"restored {model.Id} to {output}: {restored.Files} files, {MB(restored.Bytes)} in {restored.Elapsed.TotalSeconds:F2} s");

    // 3. One tensor alone, straight from the store: the largest one.
    if (model.Tensors.MaxBy(t => t.Length) is { } tensor && tensor.Length <= Array.MaxLength)
    {
        byte[] bytes = new byte[tensor.Length];
        var clock = Stopwatch.StartNew();
        int read = await store.ReadTensorAsync(model.Id, tensor.Name, bytes);
        Console.WriteLine($"tensor {tensor.Name} ({tensor.DType} [{string.Join(", ", tensor.Shape)}], in {tensor.FilePath}): " +
            $"{MB(read)} in {clock.Elapsed.TotalMilliseconds:F0} ms, first bytes {Convert.ToHexString(bytes, 0, Math.Min(8, read))}");
    }

    // 4. One file as a stream, hashed as it is read: the same SHA-256 the hub lists for it.
    StoredModelFile file = model.Files.MaxBy(f => f.Length)!;
    using (Stream stream = store.OpenFile(model.Id, file.Path))
    {
        var clock = Stopwatch.StartNew();
        string sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
        Console.WriteLine($"streamed {file.Path}: {MB(stream.Length)} in {clock.Elapsed.TotalSeconds:F2} s, sha256 {sha256} " +
            $"({(sha256 == file.Sha256 ? "matches" : "DOES NOT match")} the stored hash)");
        if (sha256 != file.Sha256)
        {
            return 6;
        }

        // Seeking costs nothing: only the chunk read is decoded.
        stream.Seek(-Math.Min(16, stream.Length), SeekOrigin.End);
        byte[] tail = new byte[16];
        int n = stream.ReadAtLeast(tail, tail.Length, throwOnEndOfStream: false);
        Console.WriteLine($"last {n} bytes of {file.Path}: {Convert.ToHexString(tail, 0, n)}");
    }
    return 0;
}
catch (Exception ex) when (ex is IOException or KeyNotFoundException or ArgumentException or UnauthorizedAccessException or InvalidDataException or NotSupportedException)
{
    // StoreDamageException is an IOException: its message names the model, file and object.
    Console.Error.WriteLine($"error: {ex.Message}");
    return ex is StoreDamageException ? 6 : 1;
}

static string MB(long bytes) => $"{bytes / 1e6:F1} MB";
