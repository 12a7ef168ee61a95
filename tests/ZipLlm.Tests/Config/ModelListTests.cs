using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Config;

public class ModelListTests
{
    [Fact]
    public void Load_CommentsBlanksAndWhitespace_Skipped()
    {
        using var dir = new TempDir();
        string path = dir.Write("list.txt", "# header\n\n  org/base   # the base\n\t# indented comment\nmy_org/ft-1\r\nother/ft.2   \n\n");
        var list = ModelList.Load(path);
        Assert.Equal(["org/base", "my_org/ft-1", "other/ft.2"], list.Models.Select(m => m.ToString()));
        Assert.Equal("org/base", list.Base.ToString());
        Assert.Equal(["my_org/ft-1", "other/ft.2"], list.Others.Select(m => m.ToString()));
    }

    [Fact]
    public void Load_ByteOrderMark_Ignored()
    {
        using var dir = new TempDir();
        string path = dir.Combine("list.txt");
        File.WriteAllText(path, "org/base\n", new System.Text.UTF8Encoding(true));
        Assert.Equal("org/base", ModelList.Load(path).Base.ToString());
    }

    [Theory]
    [InlineData("org/base\nbad id\n", 2)]
    [InlineData("# c\n\norg/a/b\n", 3)]
    [InlineData("noslash", 1)]
    [InlineData("org/ok\n/name\n", 2)]
    [InlineData("org/ok\norg/\n", 2)]
    [InlineData("org/ok\norg/n$me\n", 2)]
    [InlineData("org/ok\norg/n@\n", 2)]
    [InlineData("org/ok\norg/n@v 1\n", 2)]
    [InlineData("org/ok\norg/n@../x\n", 2)]
    [InlineData("org/ok\n@main\n", 2)]
    public void Load_InvalidId_ThrowsNamingFileAndLine(string content, int line)
    {
        using var dir = new TempDir();
        string path = dir.Write("list.txt", content);
        var ex = Assert.Throws<InvalidDataException>(() => ModelList.Load(path));
        Assert.Contains($"{path}:{line}:", ex.Message);
    }

    [Fact]
    public void Load_Duplicate_ThrowsNamingBothLines()
    {
        using var dir = new TempDir();
        string path = dir.Write("list.txt", "org/a\norg/b\n org/a # again\n");
        var ex = Assert.Throws<InvalidDataException>(() => ModelList.Load(path));
        Assert.Contains($"{path}:3:", ex.Message);
        Assert.Contains("line 1", ex.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("# only comments\n\n   \n")]
    public void Load_NoModels_Throws(string content)
    {
        using var dir = new TempDir();
        string path = dir.Write("list.txt", content);
        var ex = Assert.Throws<InvalidDataException>(() => ModelList.Load(path));
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void Load_InvalidUtf8_Throws()
    {
        using var dir = new TempDir();
        string path = dir.Combine("list.txt");
        File.WriteAllBytes(path, [(byte)'a', (byte)'/', 0xFF, (byte)'\n']);
        Assert.Throws<InvalidDataException>(() => ModelList.Load(path));
    }

    [Fact]
    public void Load_MissingFile_ThrowsFileNotFound()
    {
        using var dir = new TempDir();
        Assert.Throws<FileNotFoundException>(() => ModelList.Load(dir.Combine("none.txt")));
    }

    [Fact]
    public void Save_ThenLoad_RoundTrips()
    {
        using var dir = new TempDir();
        var list = new ModelList([ModelId.Parse("a/base"), ModelId.Parse("b_c/ft")]);
        string path = dir.Combine("sub", "list.txt");
        list.Save(path, ["header line"]);
        Assert.StartsWith("# header line\n", File.ReadAllText(path));
        Assert.Equal(list.Models, ModelList.Load(path).Models);
        Assert.Single(Directory.GetFiles(dir.Combine("sub")));
    }

    [Fact]
    public void Constructor_Duplicate_ThrowsArgumentException() =>
        Assert.Throws<ArgumentException>(() => new ModelList([ModelId.Parse("a/b"), ModelId.Parse("a/b")]));

    [Fact]
    public void Constructor_DefaultModelId_ThrowsArgumentException() =>
        Assert.Throws<ArgumentException>(() => new ModelList([ModelId.Parse("a/b"), default]));

    [Fact]
    public void Constructor_Empty_ThrowsArgumentException() =>
        Assert.Throws<ArgumentException>(() => new ModelList([]));

    [Fact]
    public void Parse_PinnedRevisions_AreKeptPerModelAndFormatBack()
    {
        ModelList list = ModelList.Parse("org/base@v1.0  # the release\norg/ft\nother/ft2 @ refs/pr/3\norg/c@0123456789abcdef0123456789abcdef01234567\n", "list.txt");
        Assert.Equal(["org/base", "org/ft", "other/ft2", "org/c"], list.Models.Select(m => m.ToString()));
        Assert.Equal("v1.0", list.RevisionOf(ModelId.Parse("org/base")));
        Assert.Null(list.RevisionOf(ModelId.Parse("org/ft")));
        Assert.Equal("refs/pr/3", list.RevisionOf(ModelId.Parse("other/ft2")));
        Assert.Equal("org/base@v1.0\norg/ft\nother/ft2@refs/pr/3\norg/c@0123456789abcdef0123456789abcdef01234567\n", list.Format());
        Assert.Equal(list.Revisions, ModelList.Parse(list.Format(), "again").Revisions);
    }

    [Fact]
    public void Parse_SameModelAtTwoRevisions_IsRefusedAsListedTwice() =>
        Assert.Contains("already listed", Assert.Throws<InvalidDataException>(() => ModelList.Parse("org/m@v1\norg/m@v2\n", "list.txt")).Message);
}
