namespace ZipLlm.Domain;

/// <summary>What a model is to the store: a base, a finetune of a base, or on its own.</summary>
internal enum ModelRoleKind
{
    /// <summary>Not named in <c>base_ft.json</c>: compressed on its own.</summary>
    Standalone,

    /// <summary>A key of <c>base_ft.json</c>: finetunes are stored as deltas against it.</summary>
    Base,

    /// <summary>Listed under a base in <c>base_ft.json</c>.</summary>
    Finetune,
}

/// <summary>The role of one model.</summary>
/// <param name="Kind">Base, finetune or standalone.</param>
/// <param name="BaseId">The base's id when <paramref name="Kind"/> is <see cref="ModelRoleKind.Finetune"/>; otherwise <see langword="null"/>.</param>
internal readonly record struct ModelRole(ModelRoleKind Kind, ModelId? BaseId)
{
    /// <summary>The role of a model <c>base_ft.json</c> does not mention.</summary>
    public static ModelRole Standalone => new(ModelRoleKind.Standalone, null);
}
