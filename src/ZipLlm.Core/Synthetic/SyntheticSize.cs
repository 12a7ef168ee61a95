using ZipLlm.Config;
using ZipLlm.Domain;
namespace ZipLlm.Synthetic;

/// <summary>How big each model of a synthetic family is.</summary>
internal enum SyntheticSize
{
    /// <summary>A few hundred kilobytes per model: for unit tests.</summary>
    Tiny,

    /// <summary>About 20 MB per model: for quick end-to-end runs.</summary>
    Small,

    /// <summary>About 250 MB per model: for benchmarks and demos.</summary>
    Default,
}

/// <summary>Parsing and naming of <see cref="SyntheticSize"/> as the command line spells it.</summary>
internal static class SyntheticSizes
{
    /// <summary>The names accepted on the command line: <c>tiny</c>, <c>small</c>, <c>default</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["tiny", "small", "default"];

    /// <summary>The command-line name of <paramref name="size"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not a defined value.</exception>
    public static string Name(this SyntheticSize size) => size switch
    {
        SyntheticSize.Tiny => "tiny",
        SyntheticSize.Small => "small",
        SyntheticSize.Default => "default",
        _ => throw new ArgumentOutOfRangeException(nameof(size), size, "Unknown synthetic size."),
    };

    /// <summary>Parses <c>tiny</c>, <c>small</c> or <c>default</c> (case-insensitive).</summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is none of them.</exception>
    public static SyntheticSize Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "tiny" => SyntheticSize.Tiny,
            "small" => SyntheticSize.Small,
            "default" => SyntheticSize.Default,
            _ => throw new UsageException($"Unknown synthetic size \"{name}\" (expected tiny, small or default).", nameof(name)),
        };
    }
}
