using System.Text;
using System.Text.RegularExpressions;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Scripts;

/// <summary>
/// The README's promises about itself: its first commands are the two a fresh machine runs (<c>.ci/run</c> runs them),
/// and every link between the README, <c>docs/</c>, <c>bench/README.md</c> and ARCHITECTURE.md leads to a file that
/// exists, and to a heading that file has.
/// </summary>
public partial class DocumentationTests
{
    [Fact]
    public void Readme_FirstCodeBlock_IsTheBuildAndEndToEndCommandThenTheTestCommand()
    {
        string readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md"));

        Match first = FencedBlock().Match(readme);

        Assert.True(first.Success, "README.md has no fenced code block");
        Assert.Equal(
            ["./setup_test_models.sh config.json && ./zipllm compress config.json", "dotnet test ZipLlm.sln -c Release"],
            first.Groups["body"].Value.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.True(readme.IndexOf(first.Value, StringComparison.Ordinal) < readme.IndexOf("\n## ", StringComparison.Ordinal),
            "the two commands must come before the README's first section");
    }

    [Fact]
    public void Readme_FastTestLoop_IsTheFilterTheTraitsDefine()
    {
        string readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md"));

        Assert.Contains("dotnet test ZipLlm.sln -c Release --filter \"Category!=S3&Category!=Slow\"", readme);
    }

    [Fact]
    public void Documentation_EveryRelativeLink_LeadsToAFileAndHeadingThatExist()
    {
        string root = Repository.Root;
        string[] pages =
        [
            "README.md", "ARCHITECTURE.md", Path.Combine("bench", "README.md"),
            .. Directory.GetFiles(Path.Combine(root, "docs"), "*.md").Select(p => Path.GetRelativePath(root, p)),
        ];
        var broken = new List<string>();

        foreach (string page in pages)
        {
            string text = WithoutCode(File.ReadAllText(Path.Combine(root, page)));
            foreach (Match link in MarkdownLink().Matches(text))
            {
                string target = link.Groups["target"].Value;
                if (target.Contains("://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal))
                {
                    continue;
                }
                string[] parts = target.Split('#', 2);
                string file = parts[0].Length == 0 ? Path.Combine(root, page) : Path.GetFullPath(Path.Combine(root, Path.GetDirectoryName(page)!, parts[0]));
                if (!File.Exists(file) && !Directory.Exists(file))
                {
                    broken.Add($"{page}: {target} (no such file)");
                }
                else if (parts.Length == 2 && file.EndsWith(".md", StringComparison.Ordinal) && !Anchors(File.ReadAllText(file)).Contains(parts[1]))
                {
                    broken.Add($"{page}: {target} (no such heading)");
                }
            }
        }

        Assert.True(pages.Length >= 4, string.Join(", ", pages));
        Assert.Empty(broken);
    }

    [Theory]
    [InlineData("## A store in S3", "a-store-in-s3")]
    [InlineData("### Format 4: huge pages, 64 rANS lanes, an AVX-512VL decoder step", "format-4-huge-pages-64-rans-lanes-an-avx-512vl-decoder-step")]
    [InlineData("## A store in S3: `s3_throughput.sh`", "a-store-in-s3-s3_throughputsh")]
    public void Anchors_Heading_AreGitHubsSlugs(string heading, string expected) =>
        Assert.Contains(expected, Anchors(heading + "\n"));

    /// <summary>GitHub's heading anchors: lower case, punctuation but '-' and '_' dropped, spaces as '-'.</summary>
    private static HashSet<string> Anchors(string markdown)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match heading in Heading().Matches(WithoutCode(markdown)))
        {
            var slug = new StringBuilder();
            foreach (char c in heading.Groups["text"].Value.Trim().ToLowerInvariant())
            {
                if (char.IsLetterOrDigit(c) || c is '-' or '_')
                {
                    slug.Append(c);
                }
                else if (c == ' ')
                {
                    slug.Append('-');
                }
            }
            anchors.Add(slug.ToString());
        }
        return anchors;
    }

    private static string WithoutCode(string markdown) => FencedBlock().Replace(markdown, "");

    [GeneratedRegex(@"^```[a-z]*\n(?<body>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex FencedBlock();

    [GeneratedRegex(@"\]\((?<target>[^)\s]+)\)")]
    private static partial Regex MarkdownLink();

    [GeneratedRegex(@"^#{1,6} (?<text>.+)$", RegexOptions.Multiline)]
    private static partial Regex Heading();
}
