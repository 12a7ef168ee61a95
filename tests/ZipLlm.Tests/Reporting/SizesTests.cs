using ZipLlm.Reporting;

namespace ZipLlm.Tests.Reporting;

public class SizesTests
{
    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(999, "999 B")]
    [InlineData(1000, "1.0 KB")]
    [InlineData(1_536, "1.5 KB")]
    [InlineData(999_949, "999.9 KB")]
    [InlineData(999_960, "1.0 MB")]
    [InlineData(267_000_000, "267.0 MB")]
    [InlineData(1_873_000_000, "1.9 GB")]
    [InlineData(2_500_000_000_000, "2.5 TB")]
    [InlineData(7_000_000_000_000_000, "7000.0 TB")]
    public void Format_PicksTheUnitThatFits(long bytes, string expected) => Assert.Equal(expected, Sizes.Format(bytes));

    [Theory]
    [InlineData(3_410, 1_000, "3.41x")]
    [InlineData(1_000, 1_000, "1.00x")]
    [InlineData(999_000, 1_000, "999.00x")]
    [InlineData(2_470_000_000, 20_166, "dedup")]
    [InlineData(267_000_000, 0, "dedup")]
    [InlineData(0, 0, "-")]
    public void Ratio_DedupFromAThousandfoldUp(long original, long added, string expected)
    {
        Assert.Equal(expected, Sizes.Ratio(original, added));
        Assert.Equal(expected == Sizes.DedupRatio, Sizes.IsDedup(original, added));
    }

    [Fact]
    public void RatioValue_NullWhereNothingWasAdded()
    {
        Assert.Equal(3.5, Sizes.RatioValue(7, 2));
        Assert.Null(Sizes.RatioValue(7, 0));
        Assert.Null(Sizes.RatioValue(0, 0));
    }

    [Theory]
    [InlineData(0, "0:00")]
    [InlineData(6.2, "0:07")]
    [InlineData(750, "12:30")]
    [InlineData(3723, "1:02:03")]
    [InlineData(1e12, "99:59:59")]
    [InlineData(-5, "0:00")]
    public void Clock_ReadsAsAClock(double seconds, string expected) => Assert.Equal(expected, Sizes.Clock(TimeSpan.FromSeconds(Math.Min(seconds, 1e9))));

    [Fact]
    public void Rate_PerSecondOrDashWhenUnknown()
    {
        Assert.Equal("312.4 MB/s", Sizes.Rate(312_400_000));
        Assert.Equal("-", Sizes.Rate(double.NaN));
    }
}
