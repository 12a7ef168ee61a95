using System.Text.RegularExpressions;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Architecture;

/// <summary>
/// The engine's folders and the only edges allowed between them, written once here (ARCHITECTURE.md draws its picture
/// from this table). A folder uses another when one of its files names a type declared there. Every edge found must be
/// allowed, and the allowed edges form no cycle, so no edge runs upward.
/// </summary>
public partial class DependencyTests
{
    /// <summary>Each folder of src/ZipLlm.Core, lowest first, with the folders it may use.</summary>
    internal static readonly (string Folder, string[] Uses)[] Layers =
    [
        ("Domain", []),
        ("IO", []),
        ("Reporting", []),
        ("Safetensors", ["Domain", "IO"]),
        ("Codecs", ["Domain", "IO", "Safetensors"]),
        ("Store/Backends", ["Domain", "IO", "Codecs"]),
        ("Store", ["Domain", "IO", "Reporting", "Safetensors", "Codecs", "Store/Backends"]),
        ("Lineage", ["Domain", "IO", "Safetensors", "Codecs", "Store"]),
        ("Config", ["Domain", "IO", "Codecs", "Store/Backends", "Store"]),
        ("Hub", ["Domain", "IO", "Config"]),
        ("Synthetic", ["Domain", "IO", "Safetensors", "Codecs", "Config", "Hub"]),
        ("Setup", ["Domain", "IO", "Store", "Config", "Hub", "Synthetic"]),
        ("Session", ["Domain", "IO", "Codecs", "Store/Backends", "Store", "Lineage", "Config"]),
        ("Jobs", ["Domain", "IO", "Reporting", "Codecs", "Store", "Lineage", "Config", "Hub", "Session"]),
        ("Api", ["Domain", "IO", "Safetensors", "Codecs", "Store/Backends", "Store", "Session"]),
        ("Tools", ["Domain", "IO", "Safetensors", "Codecs"]),
    ];

    private static readonly string Core = Path.Combine(Repository.Root, "src", "ZipLlm.Core");

    [Fact]
    public void Engine_EveryEdgeBetweenFolders_IsAllowed()
    {
        var allowed = Layers.ToDictionary(l => l.Folder, l => l.Uses.ToHashSet());
        Dictionary<string, string> declaredIn = DeclaredTypes();
        var offenders = new List<string>();
        foreach (string file in Sources())
        {
            string from = FolderOf(file);
            Assert.True(allowed.ContainsKey(from), $"{Path.GetRelativePath(Core, file)} is in a folder the table does not name: add {from} to Layers");
            foreach (string name in NamesIn(File.ReadAllText(file)))
            {
                if (declaredIn.TryGetValue(name, out string? to) && to != from && !allowed[from].Contains(to))
                {
                    offenders.Add($"{Path.GetRelativePath(Core, file)}: {name} ({from} -> {to})");
                }
            }
        }
        Assert.True(offenders.Count == 0, "edges the table does not allow:\n" + string.Join('\n', offenders.Distinct()));
    }

    [Fact]
    public void Layers_AllowedEdges_OnlyRunDownTheTable()
    {
        // Each folder uses only folders listed before it: the table is a topological order, so no cycle can be allowed.
        var seen = new HashSet<string>();
        foreach ((string folder, string[] uses) in Layers)
        {
            Assert.All(uses, used => Assert.True(seen.Contains(used), $"{folder} may use {used}, which is not below it"));
            Assert.True(seen.Add(folder), $"{folder} is listed twice");
        }
    }

    [Fact]
    public void NamesIn_CommentsAndStrings_AreNotReferences()
    {
        const string source = """
            // ModelStore in a comment
            /// <see cref="Manifest"/>
            string s = "ObjectStore in a string";
            var x = new ChunkCodec(options);
            """;

        Assert.Equal(["ChunkCodec"], NamesIn(source).Where(n => n is "ModelStore" or "Manifest" or "ObjectStore" or "ChunkCodec"));
    }

    /// <summary>Every top-level type of the engine, by the folder that declares it.</summary>
    private static Dictionary<string, string> DeclaredTypes()
    {
        var declared = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string file in Sources())
        {
            foreach (Match match in Declaration().Matches(File.ReadAllText(file)))
            {
                declared.TryAdd(match.Groups[1].Value, FolderOf(file));
            }
        }
        return declared;
    }

    private static IEnumerable<string> Sources() =>
        Directory.EnumerateFiles(Core, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && Path.GetDirectoryName(f) != Core);

    /// <summary>A file's folder: the first below src/ZipLlm.Core, but Store/Backends, the storage seam, counts as one of its own.</summary>
    private static string FolderOf(string file)
    {
        string[] parts = Path.GetRelativePath(Core, file).Split(Path.DirectorySeparatorChar);
        return parts is ["Store", "Backends", ..] ? "Store/Backends" : parts[0];
    }

    /// <summary>The capitalised names a source uses, comments and string literals left out.</summary>
    internal static IEnumerable<string> NamesIn(string source)
    {
        string code = StringLiteral().Replace(BlockComment().Replace(LineComment().Replace(source, ""), ""), "\"\"");
        return Name().Matches(code).Select(m => m.Value).Distinct();
    }

    [GeneratedRegex(@"^(?:public |internal )?(?:sealed |static |abstract |readonly |partial |unsafe )*(?:class|struct|record struct|record|enum|interface) (\w+)", RegexOptions.Multiline)]
    private static partial Regex Declaration();

    [GeneratedRegex(@"//.*")]
    private static partial Regex LineComment();

    [GeneratedRegex(@"/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex BlockComment();

    [GeneratedRegex(@"\$?@?""(?:[^""\\\n]|\\.)*""")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"\b[A-Z]\w*\b")]
    private static partial Regex Name();
}
