using System.Diagnostics;
using System.Runtime.Versioning;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Scripts;

/// <summary>
/// The <c>./zipllm</c> launcher rebuilds only when a source changed. Each test runs a copy of the real script in a
/// scratch tree, as a process, with a fake <c>dotnet</c> on the <c>PATH</c> whose "publish" writes a stand-in
/// <c>zipllm</c> and records that it ran: a build takes milliseconds instead of minutes.
/// </summary>
[UnsupportedOSPlatform("windows")]
public class LauncherScriptTests : IDisposable
{
    private const string FakeDotnet = """
        #!/usr/bin/env bash
        # Stands in for 'dotnet publish PROJECT -c Release -o OUT ...': records the call, writes OUT/zipllm.
        echo "$*" >>"$FAKE_DOTNET_LOG"
        while [[ $# -gt 0 ]]; do
          if [[ "$1" == "-o" ]]; then out="$2"; fi
          shift
        done
        mkdir -p "$out"
        printf '#!/bin/sh\necho "fake zipllm $*"\n' >"$out/zipllm"
        chmod +x "$out/zipllm"
        """;

    private readonly TempDir _dir = new();
    private readonly string _tree;
    private readonly string _log;
    private readonly string _fakeBin;

    public LauncherScriptTests()
    {
        _tree = _dir.Combine("checkout");
        _log = _dir.Combine("dotnet.log");
        _fakeBin = _dir.Combine("fake-bin");
        File.WriteAllText(_log, "");
        _dir.Write("fake-bin/dotnet", FakeDotnet.ReplaceLineEndings("\n") + "\n");
        File.SetUnixFileMode(Path.Combine(_fakeBin, "dotnet"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        Directory.CreateDirectory(_tree);
        File.Copy(Path.Combine(Repository.Root, "zipllm"), Path.Combine(_tree, "zipllm"));
        File.Copy(Path.Combine(Repository.Root, ".gitignore"), Path.Combine(_tree, ".gitignore"));
        _dir.Write("checkout/Directory.Build.props", "<Project />\n");
        _dir.Write("checkout/src/ZipLlm.Cli/ZipLlm.Cli.csproj", "<Project Sdk=\"Microsoft.NET.Sdk\" />\n");
        _dir.Write("checkout/src/ZipLlm.Cli/Program.cs", "class Program { }\n");
        _dir.Write("checkout/src/ZipLlm.Core/Codec.cs", "class Codec { }\n");
    }

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Launcher_FirstRun_BuildsAndSaysSoThenRunsTheBuild(bool git)
    {
        await Prepare(git);
        (string stdout, string stderr) = await Launch("--version");
        Assert.Contains("building zipllm (first run", stderr);
        Assert.Equal("fake zipllm --version", stdout.Trim());
        Assert.Equal(1, Builds());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Launcher_OnlyBuildOutputsOrTimesChanged_DoesNotRebuild(bool git)
    {
        await Prepare(git);
        await Launch("--version");

        // What 'dotnet test', 'dotnet pack' and bench runs leave: generated sources under obj/, outputs under bin/.
        string generated = _dir.Write("checkout/src/ZipLlm.Cli/obj/Release/net10.0/zipllm.AssemblyInfo.cs", "// generated\n");
        _dir.Write("checkout/src/ZipLlm.Core/bin/Release/net10.0/ZipLlm.Core.xml", "<doc />\n");
        File.SetLastWriteTimeUtc(generated, DateTime.UtcNow.AddMinutes(5));
        // A touch changes no content.
        File.SetLastWriteTimeUtc(Path.Combine(_tree, "src", "ZipLlm.Core", "Codec.cs"), DateTime.UtcNow.AddMinutes(5));

        (string stdout, string stderr) = await Launch("list");
        Assert.Equal("", stderr);
        Assert.Equal("fake zipllm list", stdout.Trim());
        Assert.Equal(1, Builds());
    }

    [Theory]
    [InlineData(true, "src/ZipLlm.Core/Codec.cs")]
    [InlineData(false, "src/ZipLlm.Core/Codec.cs")]
    [InlineData(true, "src/ZipLlm.Core/NewFile.cs")]
    [InlineData(false, "src/ZipLlm.Core/NewFile.cs")]
    [InlineData(true, "Directory.Build.props")]
    [InlineData(false, "src/ZipLlm.Cli/ZipLlm.Cli.csproj")]
    public async Task Launcher_SourceEditedOrAdded_RebuildsOnceAndSaysSo(bool git, string source)
    {
        await Prepare(git);
        await Launch("--version");

        File.AppendAllText(Path.Combine(_tree, source), "// edited\n");
        (string stdout, string stderr) = await Launch("--version");
        Assert.Contains("sources changed, rebuilding zipllm", stderr);
        Assert.Equal("fake zipllm --version", stdout.Trim());
        Assert.Equal(2, Builds());

        (_, string again) = await Launch("--version");
        Assert.Equal("", again);
        Assert.Equal(2, Builds());
    }

    [Fact]
    public async Task Launcher_NewSourceThenAddedToGit_DoesNotRebuild()
    {
        // git lists new files after the tracked ones: the fingerprint must not depend on which a file is, or a
        // fresh clone of a work tree with new files would rebuild what its copied build already holds.
        await Prepare(git: true);
        _dir.Write("checkout/src/ZipLlm.Core/Added.cs", "class Added { }\n");
        await Launch("--version");
        await Run("git", "add", "-A");
        (_, string stderr) = await Launch("--version");
        Assert.Equal("", stderr);
        Assert.Equal(1, Builds());
    }

    [Fact]
    public async Task Launcher_TrackedSourceDeleted_Rebuilds()
    {
        await Prepare(git: true);
        await Launch("--version");
        File.Delete(Path.Combine(_tree, "src", "ZipLlm.Core", "Codec.cs"));
        (_, string stderr) = await Launch("--version");
        Assert.Contains("sources changed", stderr);
        Assert.Equal(2, Builds());
    }

    private int Builds() => File.ReadAllLines(_log).Count(line => line.StartsWith("publish ", StringComparison.Ordinal));

    private async Task Prepare(bool git)
    {
        if (git)
        {
            await Run("git", "init", "-q");
            await Run("git", "add", "-A");
        }
    }

    private Task<(string Stdout, string Stderr)> Launch(params string[] arguments) => Run(Path.Combine(_tree, "zipllm"), arguments);

    private async Task<(string Stdout, string Stderr)> Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = _tree,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["PATH"] = _fakeBin + ":" + Environment.GetEnvironmentVariable("PATH");
        start.Environment["FAKE_DOTNET_LOG"] = _log;
        // Git in the scratch tree: no user, system or global settings.
        start.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        start.Environment["GIT_CONFIG_GLOBAL"] = "/dev/null";
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}: {await stderr}");
        return (await stdout, await stderr);
    }
}
