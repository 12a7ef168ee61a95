using ZipLlm.Serve;

namespace ZipLlm.Tests.Serve;

public sealed class ByteRangeTests
{
    [Theory]
    [InlineData("bytes=0-9", 100, 0, 10)]
    [InlineData("bytes=10-", 100, 10, 90)]
    [InlineData("bytes=-10", 100, 90, 10)]
    [InlineData("bytes=-1000", 100, 0, 100)]
    [InlineData("bytes=90-1000", 100, 90, 10)]
    [InlineData("bytes=99-99", 100, 99, 1)]
    [InlineData("BYTES=0-0", 100, 0, 1)]
    [InlineData("bytes= 5 - 6 ", 100, 5, 2)]
    [InlineData("bytes=0-99999999999999999999999", 100, 0, 100)]
    public void Parse_OneSatisfiableRange_Partial(string header, long size, long start, long length)
    {
        Assert.Equal(new ByteRange(ByteRangeKind.Partial, start, length), ByteRange.Parse(header, size));
    }

    [Theory]
    [InlineData("bytes=100-", 100)]
    [InlineData("bytes=100-200", 100)]
    [InlineData("bytes=-0", 100)]
    [InlineData("bytes=0-0", 0)]
    [InlineData("bytes=-5", 0)]
    [InlineData("bytes=99999999999999999999999-", 100)]
    public void Parse_NothingOfTheFile_Unsatisfiable(string header, long size)
    {
        Assert.Equal(ByteRangeKind.Unsatisfiable, ByteRange.Parse(header, size).Kind);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("bytes=5-2")]
    [InlineData("bytes=0-0,5-9")]
    [InlineData("bytes=-")]
    [InlineData("bytes=a-b")]
    [InlineData("bytes=+1-2")]
    [InlineData("bytes=1-2-3")]
    [InlineData("items=0-9")]
    [InlineData("bytes=0x10-")]
    public void Parse_NoneOrInvalidOrSeveral_WholeFile(string? header)
    {
        Assert.Equal(new ByteRange(ByteRangeKind.Whole, 0, 100), ByteRange.Parse(header, 100));
    }

    [Fact]
    public void End_Partial_LastByteSent()
    {
        Assert.Equal(9, ByteRange.Parse("bytes=5-9", 100).End);
    }
}
