using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary>What the serve tests need on the machine: programs on the PATH, and the JS client <c>.ci/run</c> installs.</summary>
internal static class Needs
{
    /// <summary>The folder of the JS client tests (<c>tests/js</c>) and whether <c>npm ci</c> installed it.</summary>
    public static string JsFolder => Path.Combine(Repository.Root, "tests", "js");

    public const string JsClient = "@huggingface/hub";

    /// <summary>Why a test cannot run here, or null when it can.</summary>
    public static string? Missing(string[] needs)
    {
        foreach (string need in needs)
        {
            if (need == JsClient)
            {
                if (!Directory.Exists(Path.Combine(JsFolder, "node_modules", "@huggingface", "hub")))
                {
                    return $"the JS client is not installed: run 'npm ci' in {JsFolder} (.ci/run does)";
                }
            }
            else if (!Curl.Which(need))
            {
                return $"{need} is not installed (.ci/run installs it)";
            }
        }
        return null;
    }
}

/// <summary>A fact skipped, saying why, when what it needs is not on the machine.</summary>
public sealed class NeedsFactAttribute : FactAttribute
{
    public NeedsFactAttribute(params string[] needs)
    {
        Skip = Needs.Missing(needs);
    }
}

/// <summary>A theory skipped, saying why, when what it needs is not on the machine.</summary>
public sealed class NeedsTheoryAttribute : TheoryAttribute
{
    public NeedsTheoryAttribute(params string[] needs)
    {
        Skip = Needs.Missing(needs);
    }
}
