using System.Diagnostics;

namespace ZipLlm.Tests.TestSupport;

/// <summary>
/// A small tmpfs mounted on a fresh folder (needs root), unmounted and deleted on dispose: a real file system that runs
/// out of space or inodes when a test wants it to.
/// </summary>
internal sealed class TmpfsMount : IDisposable
{
    private readonly TempDir _dir = new();

    /// <summary>Mounts a tmpfs of <paramref name="bytes"/> bytes and <paramref name="inodes"/> inodes.</summary>
    /// <exception cref="InvalidOperationException">mount failed (not root, no tmpfs).</exception>
    public TmpfsMount(long bytes, int inodes)
    {
        Path = _dir.Combine("mnt");
        Directory.CreateDirectory(Path);
        Run("mount", "-t", "tmpfs", "-o", $"size={bytes},nr_inodes={inodes},mode=0755", "tmpfs", Path);
    }

    /// <summary>The mount point.</summary>
    public string Path { get; }

    /// <summary>A path under the mount point.</summary>
    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>Makes empty files in <c>filler/</c> until the file system has no inode left; how many it made.</summary>
    public int UseEveryInode()
    {
        string folder = Combine("filler");
        Directory.CreateDirectory(folder);
        for (int made = 0; ; made++)
        {
            try
            {
                File.WriteAllBytes(System.IO.Path.Combine(folder, made.ToString(System.Globalization.CultureInfo.InvariantCulture)), []);
            }
            catch (IOException)
            {
                return made;
            }
        }
    }

    /// <summary>Unmounts (lazily, should a process still hold a file there) and deletes the folder.</summary>
    public void Dispose()
    {
        try
        {
            Run("umount", "-l", Path);
        }
        catch (InvalidOperationException)
        {
        }
        _dir.Dispose();
    }

    private static void Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        string errors = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromSeconds(30)) || process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed: {errors}");
        }
    }
}
