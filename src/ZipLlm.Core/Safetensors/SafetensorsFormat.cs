namespace ZipLlm.Safetensors;

/// <summary>Format facts of safetensors files, in one place.</summary>
internal static class SafetensorsFormat
{
    /// <summary>A file starts with the header's byte length as a little-endian unsigned 64-bit integer.</summary>
    public const int LengthPrefixSize = 8;

    /// <summary>
    /// Largest header accepted. The reference implementation refuses headers over 100 MB;
    /// real headers of models with tens of thousands of tensors are a few MB.
    /// </summary>
    public const long MaxHeaderSize = 100_000_000;

    /// <summary>Deepest JSON nesting a valid header needs is 3 (root, entry, shape array); we allow a little slack.</summary>
    public const int MaxJsonDepth = 8;

    /// <summary>Most dimensions accepted in one shape.</summary>
    public const int MaxRank = 64;

    /// <summary>The reserved key holding free-form string metadata.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>Git LFS pointer files start with this text; a clone without LFS leaves them in place of weights.</summary>
    public const string GitLfsPointerPrefix = "version https://git-lfs";

    /// <summary>Writers pad the header with spaces so the data starts on this boundary.</summary>
    public const int HeaderAlignment = 8;
}
