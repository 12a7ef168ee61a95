using System.Diagnostics;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Mount;

/// <summary>A test that needs the kernel's FUSE: skipped with a message where there is no <c>/dev/fuse</c>, no <c>fusermount3</c>, or no root.</summary>
internal sealed class FuseFactAttribute : FactAttribute
{
    public FuseFactAttribute()
    {
        Skip = MountedStore.WhyNot();
    }
}

/// <summary>
/// The tiny synthetic family compressed into a store of its own, and <c>zipllm mount</c> of it running as a real
/// process at an empty folder; on dispose the process is killed and the mount point cleared.
/// </summary>
internal sealed class MountedStore : IDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private MountedStore(TempDir dir, SyntheticFamilyResult family, string config)
    {
        Dir = dir;
        Family = family;
        Config = config;
        MountPoint = dir.Combine("mnt");
        Directory.CreateDirectory(MountPoint);
    }

    public TempDir Dir { get; }

    public SyntheticFamilyResult Family { get; }

    public string Config { get; }

    public string MountPoint { get; }

    public RunningCli? Process { get; private set; }

    /// <summary>Why FUSE tests cannot run here, or null when they can.</summary>
    public static string? WhyNot() =>
        !File.Exists("/dev/fuse") ? "no /dev/fuse on this machine"
        : !Environment.IsPrivilegedProcess ? "zipllm mount needs root (mount(2)), and the tests do not run as root"
        : !File.Exists("/usr/bin/fusermount3") && !File.Exists("/bin/fusermount3") ? "fusermount3 is not installed (Debian package fuse3)"
        : null;

    /// <summary>Compresses the family into a store of its own (the CLI as a process), then mounts it.</summary>
    public static async Task<MountedStore> CreateAsync(params string[] options)
    {
        var dir = new TempDir();
        try
        {
            (SyntheticFamilyResult family, string config) = await CompressedFamily.CreateAsync(dir);
            var store = new MountedStore(dir, family, config);
            store.Mount(options);
            return store;
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Starts <c>zipllm mount</c> and waits until it says it is mounted.</summary>
    public void Mount(params string[] options)
    {
        Process?.Dispose();
        Process = new RunningCli(["mount", Config, MountPoint, .. options]);
        Assert.True(Process.WaitForError("Mounted ", Timeout), $"zipllm mount did not say it was mounted:\n{Process.StandardError}");
    }

    /// <summary>The folder of <paramref name="model"/> in the mount.</summary>
    public string PathOf(SyntheticModel model) => Path.Combine(MountPoint, model.Id.ToString());

    /// <summary>Every file of <paramref name="model"/>'s original folder, relative to it.</summary>
    public static IEnumerable<string> FilesOf(SyntheticModel model) =>
        Directory.EnumerateFiles(model.Folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(model.Folder, f)).Order(StringComparer.Ordinal);

    /// <summary>Whether something is mounted at the mount point.</summary>
    public bool IsMounted => ZipLlm.Mount.Fuse.MountInfo.IsMountPoint(MountPoint);

    /// <summary>Runs a program to its end (bounded) and returns its exit code and output.</summary>
    public static CliResult Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using System.Diagnostics.Process process = System.Diagnostics.Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(), stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not exit in time.");
        }
        // A child it left running may hold the output open: do not wait for that.
        if (!Task.WaitAll([stdout, stderr], Timeout))
        {
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} exited, but something it started still holds its output.");
        }
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Polls <paramref name="condition"/> until it holds or <see cref="Timeout"/> passes.</summary>
    public static bool Eventually(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Timeout)
        {
            if (condition())
            {
                return true;
            }
            Thread.Sleep(20);
        }
        return condition();
    }

    public void Dispose()
    {
        Process?.Dispose();
        if (IsMounted)
        {
            Run("fusermount3", "-u", "-z", MountPoint);
        }
        Dir.Dispose();
    }
}
