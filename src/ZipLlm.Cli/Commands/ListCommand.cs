using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Jobs;
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
        StoreListing listing = new ListJob(config).Run(cancellationToken);
        IReadOnlyList<Manifest> manifests = listing.Manifests;
        TextWriter output = parseResult.InvocationConfiguration.Output;
        int idWidth = Math.Max(5, manifests.Select(m => m.Id.ToString().Length).DefaultIfEmpty(0).Max());
        output.WriteLine($"{"model".PadRight(idWidth)}  {"role",-10}  {"original MB",12}  {"added MB",10}  {"ratio",8}  base");
        foreach (Manifest m in manifests)
        {
            output.WriteLine($"{m.Id.ToString().PadRight(idWidth)}  {m.Role.ToString().ToLowerInvariant(),-10}  {m.OriginalBytes / 1e6,12:F1}  {m.AddedBytes / 1e6,10:F1}  {Ratio(m.OriginalBytes, m.AddedBytes),8}  {m.BaseId?.ToString() ?? "-"}");
        }
        output.WriteLine();
        output.WriteLine($"{manifests.Count} models, {listing.OriginalBytes / 1e6:F1} MB original, {listing.StoredBytes / 1e6:F1} MB in objects on disk, store ratio {Ratio(listing.OriginalBytes, listing.StoredBytes)}");
        // The intact models are listed all the same: one damaged manifest must not hide the rest of the store.
        foreach (string problem in listing.DamagedManifests)
        {
            logger.LogError("Damaged: {Problem}", problem);
        }
        return Task.FromResult(listing.DamagedManifests.Count == 0 ? ExitCodes.Success : ExitCodes.VerificationFailed);
    }

    private static string Ratio(long original, long stored) => stored == 0 ? "-" : $"{(double)original / stored:F2}x";
}
