using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Hub;
using ZipLlm.Lineage;

namespace ZipLlm.Jobs;

/// <summary>
/// The models a config lists, with what suggests each one's base (base_ft.json, else its model card), walked in the
/// order compress stores them: each model after the base suggested for it, when that base is here to be stored.
/// Shared by <see cref="CompressJob"/> and <see cref="BasesJob"/>, so the dry run plans what compress does.
/// </summary>
internal sealed class ListedFamily
{
    private readonly ZipLlmConfig _config;
    private readonly BasesMode _mode;
    private readonly ILogger _logger;
    private readonly HashSet<ModelId> _listed;
    private readonly Dictionary<ModelId, BaseHint?> _hints = []; // each model's card read once

    private ListedFamily(ZipLlmConfig config, BasesMode mode, ILogger logger, ModelList models, BaseFtMap roles)
    {
        _config = config;
        _mode = mode;
        _logger = logger;
        Models = models;
        Roles = roles;
        _listed = [.. models.Models];
    }

    /// <summary>The model list, in its order.</summary>
    public ModelList Models { get; }

    /// <summary>base_ft.json (empty when there is none and the mode allows that).</summary>
    public BaseFtMap Roles { get; }

    /// <summary>Reads the model list and base_ft.json: required with <see cref="BasesMode.Strict"/>; without it, every model's base is detected.</summary>
    /// <exception cref="FileNotFoundException">The model list is missing, or base_ft.json with <see cref="BasesMode.Strict"/>.</exception>
    /// <exception cref="InvalidDataException">Either file is malformed.</exception>
    public static ListedFamily Load(ZipLlmConfig config, BasesMode mode, ILogger logger)
    {
        ModelList models = ModelList.Load(CompressJob.ResolveModelList(config, logger));
        BaseFtMap roles;
        if (File.Exists(config.BaseFtPath))
        {
            roles = BaseFtMap.Load(config.BaseFtPath);
        }
        else if (mode == BasesMode.Strict)
        {
            throw new FileNotFoundException($"{config.BaseFtPath} (base_ft_path in {config.ConfigPath}) does not exist; --bases strict takes its word as law: write it, or leave out --bases strict to detect each model's base.", config.BaseFtPath);
        }
        else
        {
            logger.LogInformation("No {Map}: each model's base is chosen among the models stored before it", config.BaseFtPath);
            roles = new BaseFtMap();
        }
        return new ListedFamily(config, mode, logger, models, roles);
    }

    /// <summary>The base base_ft.json names for the model, else (with <see cref="BasesMode.Auto"/>) the first model its card names.</summary>
    public BaseHint? HintFor(ModelId modelId)
    {
        if (Roles.RoleOf(modelId).BaseId is { } listed)
        {
            return new BaseHint(listed, "base_ft.json");
        }
        if (_mode != BasesMode.Auto)
        {
            return null;
        }
        if (!_hints.TryGetValue(modelId, out BaseHint? hint))
        {
            hint = CardHint(modelId, _config.ModelFolderFor(modelId, Models.RevisionOf(modelId)));
            _hints[modelId] = hint;
        }
        return hint;
    }

    /// <summary>The first model id the card (README.md) in <paramref name="folder"/> names as its <c>base_model</c>, other than the model itself.</summary>
    public static BaseHint? CardHint(ModelId modelId, string folder)
    {
        foreach (string named in ModelCard.ReadBaseModels(Path.Combine(folder, ModelCard.FileName)))
        {
            if (ModelId.TryParse(named, out ModelId cardBase, out _) && cardBase != modelId)
            {
                return new BaseHint(cardBase, "model card");
            }
        }
        return null;
    }

    /// <summary>
    /// Calls <paramref name="visit"/> once for every listed model, in list order but each after its suggested base when
    /// that base is not <paramref name="isStored"/> and its folder is here (a base base_ft.json names, or one the card
    /// names that is listed too). A chain that leads back to a model stops there.
    /// </summary>
    public void Walk(Func<ModelId, bool> isStored, Action<ModelId> visit)
    {
        var visited = new HashSet<ModelId>();
        void Visit(ModelId modelId)
        {
            if (!visited.Add(modelId))
            {
                return;
            }
            if (HintFor(modelId) is { } hint && !isStored(hint.Base)
                && (Roles.RoleOf(modelId).BaseId is not null || _listed.Contains(hint.Base)) && _config.HasModel(hint.Base))
            {
                _logger.LogInformation("{Model} needs its base {Base}, which is not stored yet: storing the base first", modelId, hint.Base);
                Visit(hint.Base);
            }
            visit(modelId);
        }
        foreach (ModelId modelId in Models.Models)
        {
            Visit(modelId);
        }
    }
}
