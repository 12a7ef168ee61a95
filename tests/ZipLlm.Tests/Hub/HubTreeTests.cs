using System.Text;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Hub;

namespace ZipLlm.Tests.Hub;

public class HubTreeTests
{
    private static readonly string s_sha = new('A', 64);
    private static readonly string s_oid = new('b', 40);

    private static List<HubFile> Parse(string json)
    {
        var files = new List<HubFile>();
        HubTree.Parse(Encoding.UTF8.GetBytes(json), ModelId.Parse("org/m"), files);
        return files;
    }

    [Fact]
    public void Parse_LfsGitAndFolderEntries_ReturnsFilesOnlyWithLowerCaseHashes()
    {
        var files = Parse($$$"""
            [{"type":"file","path":"model.safetensors","size":3,"oid":"{{{s_oid}}}","lfs":{"oid":"{{{s_sha}}}","size":1234}},
             {"type":"file","path":"config.json","size":7,"oid":"{{{s_oid.ToUpperInvariant()}}}"},
             {"type":"directory","path":"original","size":0}]
            """);
        Assert.Equal([new HubFile("model.safetensors", 1234, new string('a', 64), null), new HubFile("config.json", 7, null, s_oid)], files);
    }

    [Theory]
    [InlineData("""{"type":"file"}""")]
    [InlineData("""[{"type":"file","size":1}]""")]
    [InlineData("""[{"path":"x","size":1}]""")]
    [InlineData("""[{"type":"file","path":"x","size":-1}]""")]
    [InlineData("""[{"type":"file","path":"x","size":1,"oid":"abc"}]""")]
    [InlineData("""[{"type":"file","path":"x","size":1,"lfs":{"oid":"zz","size":1}}]""")]
    [InlineData("""[{"type":"file","path":"x","lfs":{"oid":"0000000000000000000000000000000000000000000000000000000000000000"}}]""")]
    [InlineData("""[{"type":"file","path":"x","size":1""")]
    [InlineData("[1]")]
    [InlineData("""[{"type":"file","path":"x","size":"1"}]""")]
    [InlineData("""[{"type":"file","path":"x","size":1.5}]""")]
    [InlineData("""[{"type":"file","path":"x","lfs":{"oid":"0000000000000000000000000000000000000000000000000000000000000000","size":true}}]""")]
    public void Parse_Malformed_ThrowsProtocolNamingModel(string json)
    {
        var ex = Assert.Throws<HubException>(() => Parse(json));
        Assert.Equal(HubErrorKind.Protocol, ex.Kind);
        Assert.StartsWith("org/m: ", ex.Message);
    }
}
