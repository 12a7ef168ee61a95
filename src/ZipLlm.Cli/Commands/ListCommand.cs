using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm list config.json</c>: the models a store holds, with sizes and ratios.</summary>
internal sealed class ListCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();

    public ListCommand()
        : base("list", "List stored models: role, original bytes, bytes each added to the store, ratio; and the whole store's ratio.")
    {
        Arguments.Add(s_config);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName);
        ModelStore store = ModelStore.Open(config.StorageDir, create: false);
        // Shared, as readers take it: a remove or gc under way would otherwise delete objects as they are counted.
        using IDisposable storeLock = store.LockStore(exclusive: false, cancellationToken);
        ManifestScan scan = store.ScanManifests();
        IReadOnlyList<Manifest> manifests = scan.Manifests;
        TextWriter output = parseResult.InvocationConfiguration.Output;
        int idWidth = Math.Max(5, manifests.Select(m => m.Id.Length).DefaultIfEmpty(0).Max());
        output.WriteLine($"{"model".PadRight(idWidth)}  {"role",-10}  {"original MB",12}  {"added MB",10}  {"ratio",8}  base");
        foreach (Manifest m in manifests)
        {
            output.WriteLine($"{m.Id.PadRight(idWidth)}  {m.Role.ToString().ToLowerInvariant(),-10}  {m.OriginalBytes / 1e6,12:F1}  {m.AddedBytes / 1e6,10:F1}  {Ratio(m.OriginalBytes, m.AddedBytes),8}  {m.BaseId ?? "-"}");
        }
        long original = manifests.Sum(m => m.OriginalBytes);
        long onDisk = store.Objects.Enumerate().Sum(store.Objects.SizeOf);
        output.WriteLine();
        output.WriteLine($"{manifests.Count} models, {original / 1e6:F1} MB original, {onDisk / 1e6:F1} MB in objects on disk, store ratio {Ratio(original, onDisk)}");
        // The intact models are listed all the same: one damaged manifest must not hide the rest of the store.
        foreach ((_, string problem) in scan.Damaged)
        {
            logger.LogError("Damaged: {Problem}", problem);
        }
        return Task.FromResult(scan.Damaged.Count == 0 ? ExitCodes.Success : ExitCodes.VerificationFailed);
    }

    private static string Ratio(long original, long stored) => stored == 0 ? "-" : $"{(double)original / stored:F2}x";
}
