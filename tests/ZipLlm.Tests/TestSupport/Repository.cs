namespace ZipLlm.Tests.TestSupport;

/// <summary>The checkout the tests were built from.</summary>
internal static class Repository
{
    /// <summary>The folder holding ZipLlm.sln, above the test assembly.</summary>
    /// <exception cref="InvalidOperationException">The test assembly is not inside a checkout.</exception>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ZipLlm.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("The repository root (ZipLlm.sln) is not above the test assembly.");
    }
}
