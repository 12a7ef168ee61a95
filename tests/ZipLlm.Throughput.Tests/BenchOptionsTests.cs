namespace ZipLlm.Throughput.Tests;

public class BenchOptionsTests
{
    private const string Cwd = "/home/me/work";

    private static BenchOptions Parse(params string[] args) => BenchOptions.Parse(args, Cwd, processorCount: 2);

    [Fact]
    public void Parse_OriginalInterface_ReadsEveryOption()
    {
        BenchOptions o = Parse("--threads", "1", "2", "4", "8", "--config", "../config.json", "--mode", "both",
            "--models", "a/b", "c/d", "--runs", "5", "--drop-cache", "--out", "res");

        Assert.Equal([1, 2, 4, 8], o.Threads);
        Assert.Equal("/home/me/config.json", o.ConfigPath);
        Assert.Equal(BenchMode.Both, o.Mode);
        Assert.Equal(["a/b", "c/d"], o.Models.Select(m => m.ToString()));
        Assert.True(o.ModelsGiven);
        Assert.Equal(5, o.Runs);
        Assert.True(o.DropCache);
        Assert.False(o.AnalyzeOnly);
        Assert.Equal("/home/me/work/res", o.OutDir);
    }

    [Fact]
    public void Parse_OnlyConfig_UsesDefaults()
    {
        BenchOptions o = Parse("--config", "/abs/config.json");

        Assert.Equal("/abs/config.json", o.ConfigPath);
        Assert.Equal([1, 2], o.Threads);
        Assert.Equal(BenchMode.Restore, o.Mode);
        Assert.Equal(BenchOptions.DefaultModels, o.Models);
        Assert.False(o.ModelsGiven);
        Assert.Equal(BenchOptions.DefaultRuns, o.Runs);
        Assert.Equal(BenchOptions.DefaultZstdLevel, o.ZstdLevel);
        Assert.Equal("/home/me/work/throughput_results", o.OutDir);
    }

    [Fact]
    public void Parse_ThreadsWithCommasAndRepeats_SortedAndDistinct() =>
        Assert.Equal([1, 2, 4], Parse("--threads", "4,1", "2", "1", "--config", "c.json").Threads);

    [Theory]
    [InlineData(1, new[] { 1 })]
    [InlineData(2, new[] { 1, 2 })]
    [InlineData(6, new[] { 1, 2, 4, 6 })]
    [InlineData(8, new[] { 1, 2, 4, 8 })]
    public void DefaultThreads_PowersOfTwoUpToCoreCount(int cores, int[] expected) =>
        Assert.Equal(expected, BenchOptions.DefaultThreads(cores));

    [Fact]
    public void Parse_AnalyzeOnlyWithoutConfig_IsValid()
    {
        BenchOptions o = Parse("--analyze-only", "--out", "/r");
        Assert.True(o.AnalyzeOnly);
        Assert.Null(o.ConfigPath);
        Assert.Equal("/r", o.OutDir);
    }

    [Fact]
    public void Parse_Help_StopsBeforeLaterArguments() => Assert.True(Parse("-h", "--bogus").Help);

    [Theory]
    [InlineData(new[] { "--threads", "1" }, "--config is required")]
    [InlineData(new[] { "--config", "c.json", "--threads" }, "--threads needs at least one value")]
    [InlineData(new[] { "--config", "c.json", "--threads", "0" }, "--threads: '0'")]
    [InlineData(new[] { "--config", "c.json", "--threads", "two" }, "--threads: 'two'")]
    [InlineData(new[] { "--config", "c.json", "--runs", "-1" }, "--runs: '-1'")]
    [InlineData(new[] { "--config", "c.json", "--runs", "--drop-cache" }, "--runs needs a value")]
    [InlineData(new[] { "--config", "c.json", "--runs", "0" }, "--runs: '0'")]
    [InlineData(new[] { "--config", "c.json", "--mode", "decompress" }, "--mode: 'decompress'")]
    [InlineData(new[] { "--config", "c.json", "--models", "nosuchslash" }, "'nosuchslash' is not a model id")]
    [InlineData(new[] { "--config", "c.json", "--config", "d.json" }, "--config is given twice")]
    [InlineData(new[] { "--config", "c.json", "--frobnicate" }, "Unknown option --frobnicate")]
    [InlineData(new[] { "stray", "--config", "c.json" }, "Unexpected argument 'stray'")]
    [InlineData(new[] { "--analyze-only", "--memory-check" }, "exclude each other")]
    public void Parse_BadArguments_ThrowNamingTheProblem(string[] args, string expected)
    {
        var ex = Assert.Throws<ArgumentException>(() => Parse(args));
        Assert.Contains(expected, ex.Message);
    }
}
