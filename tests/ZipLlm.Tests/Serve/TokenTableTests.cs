using ZipLlm.Serve;

namespace ZipLlm.Tests.Serve;

public sealed class TokenTableTests
{
    private const string File = """
        # token        models
        hf_acme_all    acme/*
        hf_one         other/model-a  third/x

        hf_root *
        """;

    [Theory]
    [InlineData("Bearer hf_acme_all", "acme/llama", true)]
    [InlineData("Bearer hf_acme_all", "acme2/llama", false)]
    [InlineData("Bearer hf_acme_all", "acm/llama", false)]
    [InlineData("bearer hf_one", "other/model-a", true)]
    [InlineData("Bearer hf_one", "third/x", true)]
    [InlineData("Bearer hf_one", "other/model-b", false)]
    [InlineData("Bearer hf_root", "any/thing", true)]
    public void Authenticate_KnownToken_CoversItsPatternsOnly(string header, string model, bool covered)
    {
        TokenGrant? grant = TokenTable.Parse(File, "tokens").Authenticate(header);
        Assert.NotNull(grant);
        Assert.Equal(covered, grant.Covers(model));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Bearer")]
    [InlineData("Bearer hf_acme_al")]
    [InlineData("Bearer hf_acme_all2")]
    [InlineData("Basic hf_acme_all")]
    [InlineData("hf_acme_all")]
    public void Authenticate_NoOrUnknownToken_Null(string? header)
    {
        Assert.Null(TokenTable.Parse(File, "tokens").Authenticate(header));
    }

    [Theory]
    [InlineData("lonely_token", "line 1")]
    [InlineData("t1 acme/*\nt2 acme/**", "line 2")]
    [InlineData("t1 a*/b", "line 1")]
    [InlineData("t1 acme", "line 1")]
    [InlineData("t1 a/b/c", "line 1")]
    [InlineData("t1 *\n# c\nt1 x/y", "line 3")]
    public void Parse_MalformedLine_RefusedNamingLineNotToken(string text, string line)
    {
        var ex = Assert.Throws<InvalidDataException>(() => TokenTable.Parse(text, "tokens.txt"));
        Assert.Contains($"tokens.txt, {line}", ex.Message);
        Assert.DoesNotContain("t1", ex.Message);
        Assert.DoesNotContain("lonely_token", ex.Message);
    }

    [Fact]
    public void Parse_CommentsAndBlankLines_Skipped()
    {
        Assert.Equal(3, TokenTable.Parse(File, "tokens").Count);
    }
}
