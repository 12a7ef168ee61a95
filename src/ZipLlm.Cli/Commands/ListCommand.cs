using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Session;
using ZipLlm.Reporting;
using ZipLlm.Store;
using ZipLlm.Store.Catalog;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm list config.json</c>: the models a store holds, with sizes and ratios.</summary>
internal sealed class ListCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Option<bool> s_json = CommonOptions.JsonOption();
    private static readonly Option<bool> s_tree = new("--tree")
    {
        Description = "Draw the store as a family tree: each base with its finetunes (and theirs) under it, with what each added. "
            + "With --json, the document is the same (each model names its base).",
    };

    public ListCommand()
        : base("list", "List stored models: role, original size, what each added to the store, ratio; and the whole store's ratio.")
    {
        Arguments.Add(s_config);
        Options.Add(s_json);
        Options.Add(s_tree);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName);
        StoreListing listing = new ListJob(config).Run(cancellationToken);
        TextWriter output = parseResult.InvocationConfiguration.Output;
        if (parseResult.GetValue(s_json))
        {
            JsonOutput.Write(output, ToJson(config, listing), CliJsonContext.Default.ListOutput);
        }
        else if (parseResult.GetValue(s_tree))
        {
            WriteTree(output, listing);
        }
        else
        {
            WriteTable(output, listing);
        }
        // The intact models are listed all the same: one damaged manifest must not hide the rest of the store.
        foreach (string problem in listing.DamagedManifests)
        {
            logger.LogError("Damaged: {Problem}", problem);
        }
        return Task.FromResult(listing.DamagedManifests.Count == 0 ? ExitCodes.Success : ExitCodes.VerificationFailed);
    }

    private static void WriteTable(TextWriter output, StoreListing listing)
    {
        IReadOnlyList<CatalogEntry> manifests = listing.Manifests;
        int idWidth = Math.Max(5, manifests.Select(m => m.Id.ToString().Length).DefaultIfEmpty(0).Max());
        output.WriteLine($"{"model".PadRight(idWidth)}  {"role",-10}  {"original",10}  {"added",10}  {"ratio",8}  {"chunks diff/xor/solo",20}  {"revision",-12}  base");
        foreach (CatalogEntry m in manifests)
        {
            output.WriteLine($"{m.Id.ToString().PadRight(idWidth)}  {RoleName(listing.Roles[m.Id]),-10}  {Sizes.Format(m.OriginalBytes),10}  {Sizes.Format(m.AddedBytes),10}  {Sizes.Ratio(m.OriginalBytes, m.AddedBytes),8}  {Chunks(m.Chunks),20}  {ShortRevision(m.Revision),-12}  {m.BaseId?.ToString() ?? "-"}");
        }
        output.WriteLine();
        WriteSummary(output, listing);
    }

    private static ListOutput ToJson(ZipLlmConfig config, StoreListing listing) => new(
        config.StorageDir,
        listing.Manifests.Select(m => new ListedModel(
            m.Id.ToString(), RoleName(listing.Roles[m.Id]), m.BaseId?.ToString(), m.FileCount, m.OriginalBytes, m.AddedBytes,
            Sizes.RatioValue(m.OriginalBytes, m.AddedBytes), Sizes.IsDedup(m.OriginalBytes, m.AddedBytes), m.StoredAt,
            m.Chunks is { } c ? new ChunkCountsOutput(c.OrderedDifference, c.Xor, c.Solo) : null, m.Revision)).ToList(),
        listing.OriginalBytes, listing.StoredBytes, Sizes.RatioValue(listing.OriginalBytes, listing.StoredBytes), listing.DamagedManifests);

    /// <summary>The hub commit the model's files were, shortened as git does (12 digits); "-" when unknown.</summary>
    private static string ShortRevision(string? revision) => revision is null ? "-" : revision.Length > 12 ? revision[..12] : revision;

    private static void WriteSummary(TextWriter output, StoreListing listing) =>
        output.WriteLine($"{listing.Manifests.Count} models, {Sizes.Format(listing.OriginalBytes)} original, {Sizes.Format(listing.StoredBytes)} in objects on disk, " +
            $"store ratio {Sizes.Ratio(listing.OriginalBytes, listing.StoredBytes)}");

    /// <summary>A model's role as the store holds it now (<see cref="Manifest.RolesAmong"/>), as the listing names it.</summary>
    private static string RoleName(ModelRoleKind role) => role switch
    {
        ModelRoleKind.Finetune => "finetune",
        ModelRoleKind.Base => "base",
        _ => "standalone",
    };

    /// <summary>
    /// The family tree: every model without a stored base at the root (a base whose own base was removed says so), each
    /// model's finetunes under it by id, with its original size, what it added and its ratio.
    /// </summary>
    private static void WriteTree(TextWriter output, StoreListing listing)
    {
        IReadOnlyList<CatalogEntry> manifests = listing.Manifests;
        var ids = new HashSet<ModelId>(manifests.Select(m => m.Id));
        ILookup<ModelId, CatalogEntry> children = manifests.Where(m => m.BaseId is { } b && ids.Contains(b)).ToLookup(m => m.BaseId!.Value);
        string Line(CatalogEntry m) =>
            $"{m.Id}  {Sizes.Format(m.OriginalBytes)}, added {Sizes.Format(m.AddedBytes)} ({Sizes.Ratio(m.OriginalBytes, m.AddedBytes)})"
            + (m.BaseId is { } b && !ids.Contains(b) ? $"  [its base {b} is no longer stored]" : "");
        void Draw(CatalogEntry m, string indent, bool last, bool root)
        {
            output.WriteLine(root ? Line(m) : $"{indent}{(last ? "└── " : "├── ")}{Line(m)}");
            string below = root ? "" : indent + (last ? "    " : "│   ");
            List<CatalogEntry> under = children[m.Id].OrderBy(c => c.Id.ToString(), StringComparer.Ordinal).ToList();
            for (int i = 0; i < under.Count; i++)
            {
                Draw(under[i], below, i == under.Count - 1, root: false);
            }
        }
        foreach (CatalogEntry root in manifests.Where(m => m.BaseId is not { } b || !ids.Contains(b)).OrderBy(m => m.Id.ToString(), StringComparer.Ordinal))
        {
            Draw(root, "", last: true, root: true);
        }
        output.WriteLine();
        WriteSummary(output, listing);
    }

    /// <summary>How the model's new chunks were coded: ordered difference, XOR, solo ("-" for manifests from before codec format 3).</summary>
    private static string Chunks(ChunkCounts? chunks) => chunks is null ? "-" : $"{chunks.OrderedDifference}/{chunks.Xor}/{chunks.Solo}";
}
