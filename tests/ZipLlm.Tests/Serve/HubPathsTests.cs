using ZipLlm.Serve;

namespace ZipLlm.Tests.Serve;

public sealed class HubPathsTests
{
    [Theory]
    [InlineData("config.json", "config.json")]
    [InlineData("sub/dir/x.json", "sub/dir/x.json")]
    [InlineData("sub%2Fx.json", "sub/x.json")]
    [InlineData("..a/b..", "..a/b..")]
    [InlineData("a b.txt", "a b.txt")]
    public void TryNormalize_ModelFilePath_Accepted(string raw, string expected)
    {
        Assert.True(HubPaths.TryNormalize(raw, allowEmpty: false, out string path, out _));
        Assert.Equal(expected, path);
    }

    [Theory]
    [InlineData("..")]
    [InlineData("../etc/passwd")]
    [InlineData("a/../../b")]
    [InlineData("a/./b")]
    [InlineData("..%2F..%2Fetc")]
    [InlineData("/etc/passwd")]
    [InlineData("%2Fetc%2Fpasswd")]
    [InlineData("C:/Windows")]
    [InlineData("a\\b")]
    [InlineData("..\\..\\x")]
    [InlineData("a\0b")]
    [InlineData("a\nb")]
    [InlineData("a//b")]
    [InlineData("")]
    [InlineData(null)]
    public void TryNormalize_HostilePath_RefusedWithReason(string? raw)
    {
        Assert.False(HubPaths.TryNormalize(raw, allowEmpty: false, out string path, out string problem));
        Assert.Equal("", path);
        Assert.NotEmpty(problem);
    }

    [Fact]
    public void TryNormalize_EmptyTreeRoot_AcceptedOnlyWhenAllowed()
    {
        Assert.True(HubPaths.TryNormalize("", allowEmpty: true, out string root, out _));
        Assert.Equal("", root);
        Assert.True(HubPaths.TryNormalize("sub/", allowEmpty: true, out string sub, out _));
        Assert.Equal("sub", sub);
    }

    [Fact]
    public void TryNormalize_LongerThanMax_Refused()
    {
        Assert.False(HubPaths.TryNormalize(new string('a', HubPaths.MaxLength + 1), allowEmpty: false, out _, out _));
    }
}
