using System.Text.RegularExpressions;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store.Backends;

/// <summary>The storage seam holds: no code outside the backends reaches a store's files by their paths.</summary>
public partial class SeamTests
{
    [Fact]
    public void Sources_OutsideTheBackends_NeverNameAPathInAFolderStore()
    {
        string root = Repository.Root;
        string backends = Path.Combine(root, "src", "ZipLlm.Core", "Store", "Backends") + Path.DirectorySeparatorChar;
        var offenders = new List<string>();
        foreach (string file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            if (file.StartsWith(backends, StringComparison.Ordinal) || file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")
                || file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            {
                continue;
            }
            string[] lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                if (StorePath().IsMatch(lines[i]))
                {
                    offenders.Add($"{Path.GetRelativePath(root, file)}:{i + 1}: {lines[i].Trim()}");
                }
            }
        }
        Assert.True(offenders.Count == 0, "store paths used outside src/ZipLlm.Core/Store/Backends:\n" + string.Join('\n', offenders));
    }

    [Fact]
    public void StorePath_PatternItself_CatchesEachWayOfNamingAStorePath()
    {
        // The check above proves nothing if its pattern matches nothing.
        foreach (string line in new[] { "File.Delete(Layout.ObjectPath(hash));", "store.Layout.ManifestPath(id)", "layout.LockPath(\"store\")", "x.TempDir", "layout.LocksDir", "Layout.Root" })
        {
            Assert.Matches(StorePath(), line);
        }
        Assert.DoesNotMatch(StorePath(), "string tempDir = Path.GetTempPath();");
    }

    [GeneratedRegex(@"\.(ObjectPath|ManifestPath|ManifestPathOfKey|LockPath)\(|\.(ObjectsDir|ManifestsDir|TempDir|LocksDir|FormatFile)\b|Layout\.Root\b")]
    private static partial Regex StorePath();
}
