using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Config;

public class BaseFtMapTests
{
    [Fact]
    public void Load_ValidMap_GivesRoles()
    {
        using var dir = new TempDir();
        string path = dir.Write("base_ft.json", """{ "org/base": ["org/ft1", "other_org/ft2"], "x/b2": [] }""");
        var map = BaseFtMap.Load(path);
        Assert.Equal(new ModelRole(ModelRoleKind.Base, null), map.RoleOf(ModelId.Parse("org/base")));
        Assert.Equal(new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("org/base")), map.RoleOf(ModelId.Parse("other_org/ft2")));
        Assert.Equal(ModelRoleKind.Base, map.RoleOf(ModelId.Parse("x/b2")).Kind);
        Assert.Equal(ModelRole.Standalone, map.RoleOf(ModelId.Parse("some/model")));
        Assert.Equal(["org/ft1", "other_org/ft2"], map.FinetunesOf(ModelId.Parse("org/base")).Select(m => m.ToString()));
        Assert.Empty(map.FinetunesOf(ModelId.Parse("org/ft1")));
    }

    [Theory]
    [InlineData("""{ "a/base": ["x/ft"], "b/base": ["x/ft"] }""", "two bases")]
    [InlineData("""{ "a/base": ["x/ft", "x/ft"] }""", "twice")]
    [InlineData("""{ "a/base": ["b/base"], "b/base": ["a/base"] }""", "circular")]
    [InlineData("""{ "a/m": ["b/m"], "b/m": ["c/m"], "c/m": ["a/m"] }""", "circular")]
    [InlineData("""{ "a/base": ["a/base"] }""", "own finetune")]
    [InlineData("""{ "a/base": ["x/ft"], "a/base": [] }""", "twice")]
    [InlineData("""{ "a/base": "x/ft" }""", "array")]
    [InlineData("""{ "a/base": [1] }""", "a/base")]
    [InlineData("""{ "a/base": ["bad"] }""", "bad")]
    [InlineData("""{ "nobase": ["x/ft"] }""", "nobase")]
    [InlineData("""["a/base"]""", "object")]
    [InlineData("""{ "a/base": ["x/ft"] """, "JSON")]
    public void Load_InvalidMap_ThrowsNamingFile(string content, string expected)
    {
        using var dir = new TempDir();
        string path = dir.Write("base_ft.json", content);
        var ex = Assert.Throws<InvalidDataException>(() => BaseFtMap.Load(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    [Theory]
    [InlineData("""{ "a/base": ["b/instruct"], "b/instruct": ["c/chat"] }""")]
    [InlineData("""{ "b/instruct": ["c/chat"], "a/base": ["b/instruct"] }""")]
    public void Load_Chain_GivesEachModelItsOwnBase(string content)
    {
        using var dir = new TempDir();
        var map = BaseFtMap.Load(dir.Write("base_ft.json", content));
        Assert.Equal(new ModelRole(ModelRoleKind.Base, null), map.RoleOf(ModelId.Parse("a/base")));
        Assert.Equal(new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("a/base")), map.RoleOf(ModelId.Parse("b/instruct")));
        Assert.Equal(new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("b/instruct")), map.RoleOf(ModelId.Parse("c/chat")));
        Assert.Equal(["c/chat"], map.FinetunesOf(ModelId.Parse("b/instruct")).Select(m => m.ToString()));
    }

    [Fact]
    public void Save_ThenLoad_RoundTripsInOrder()
    {
        using var dir = new TempDir();
        var map = new BaseFtMap([new(ModelId.Parse("z/base"), [ModelId.Parse("a/ft"), ModelId.Parse("my_org/ft")]), new(ModelId.Parse("a/base"), [])]);
        string path = dir.Combine("out", "base_ft.json");
        map.Save(path);
        var loaded = BaseFtMap.Load(path);
        Assert.Equal(["z/base", "a/base"], loaded.Entries.Select(e => e.Key).Select(m => m.ToString()));
        Assert.Equal(["a/ft", "my_org/ft"], loaded.FinetunesOf(ModelId.Parse("z/base")).Select(m => m.ToString()));
        Assert.Equal(map.ToJson(), File.ReadAllText(path));
    }

    [Fact]
    public void FromModelList_FirstIsBase_RestAreFinetunes()
    {
        var map = BaseFtMap.FromModelList(new ModelList([ModelId.Parse("o/b"), ModelId.Parse("o/f1"), ModelId.Parse("p/f2")]));
        Assert.Equal(ModelRoleKind.Base, map.RoleOf(ModelId.Parse("o/b")).Kind);
        Assert.Equal("o/b", map.RoleOf(ModelId.Parse("p/f2")).BaseId?.ToString());
    }

    [Fact]
    public void Constructor_DefaultModelId_ThrowsArgumentException()
    {
        Assert.Throws<ArgumentException>(() => new BaseFtMap([new(default, [ModelId.Parse("c/d")])]));
        Assert.Throws<ArgumentException>(() => new BaseFtMap([new(ModelId.Parse("a/b"), [default])]));
    }

    [Fact]
    public void Constructor_ModelUnderTwoBases_ThrowsArgumentException() =>
        Assert.Throws<ArgumentException>(() => new BaseFtMap([new(ModelId.Parse("a/b"), [ModelId.Parse("c/d")]), new(ModelId.Parse("e/f"), [ModelId.Parse("c/d")])]));

    [Fact]
    public void Load_SavedWithAUtf8ByteOrderMark_Accepted()
    {
        using var dir = new TempDir();
        string path = dir.Combine("base_ft.json");
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. """{ "org/base": ["org/ft1"] }"""u8]);

        Assert.Contains(ModelId.Parse("org/ft1"), BaseFtMap.Load(path).FinetunesOf(ModelId.Parse("org/base")));
    }

    [Fact]
    public void Load_AFifo_RefusedWithoutWaitingForAWriter()
    {
        using var dir = new TempDir();
        string fifo = dir.Combine("base_ft.json");
        MakeFifo(fifo);

        // Opened without O_NONBLOCK, it would wait for a writer forever.
        Task<BaseFtMap> load = Task.Run(() => BaseFtMap.Load(fifo));
        Assert.True(((IAsyncResult)load).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(20)), "Load waited on the FIFO");
        var ex = Assert.Throws<InvalidDataException>(() => load.GetAwaiter().GetResult());
        Assert.Contains("base/finetune map is a FIFO, socket or device, not a regular file", ex.Message);
    }

    /// <summary>Makes a FIFO at <paramref name="path"/> (mkfifo).</summary>
    internal static void MakeFifo(string path)
    {
        using var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path]);
        Assert.True(mkfifo.WaitForExit(TimeSpan.FromSeconds(10)) && mkfifo.ExitCode == 0, $"mkfifo {path} failed");
    }
}
