// Reads every tensor of a stored model one by one through the library API (ZipLlmStore.ReadTensor), three rounds,
// and prints the time per tensor: what a program that loads weights lazily pays per call.
//   dotnet run bench/read_tensors/read_tensors.cs -- STORE MODEL     (STORE: a folder, or s3://BUCKET/PREFIX with the AWS variables set)
#:project ../../src/ZipLlm.Core/ZipLlm.Core.csproj
using System.Diagnostics;
using ZipLlm;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: dotnet run bench/read_tensors/read_tensors.cs -- STORE MODEL");
    return 2;
}
await using ZipLlmStore store = ZipLlmStore.Open(args[0], new ZipLlmStoreOptions { Threads = 2 });
StoredModel model = store.GetModel(args[1]);
List<StoredModelTensor> tensors = [.. model.Tensors];
byte[] buffer = new byte[tensors.Max(t => t.Length)];
for (int round = 1; round <= 3; round++)
{
    var clock = Stopwatch.StartNew();
    foreach (StoredModelTensor tensor in tensors)
    {
        store.ReadTensor(model.Id, tensor.Name, buffer);
    }
    Console.WriteLine($"round {round}: {tensors.Count} tensors in {clock.Elapsed.TotalMilliseconds:F0} ms, {clock.Elapsed.TotalMilliseconds / tensors.Count:F2} ms a tensor");
}
return 0;
