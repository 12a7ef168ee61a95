using System.Runtime.InteropServices;
using System.Text.Json;

namespace ZipLlm.Throughput;

/// <summary>The outside world of a benchmark run: the CLI, zstd, a scratch folder, the page cache, the log.</summary>
internal sealed partial class Workspace : IDisposable
{
    private bool _dropWarned;

    public Workspace(string cli, string outDir)
    {
        Cli = cli;
        OutDir = outDir;
        Directory.CreateDirectory(outDir);
        LogFile = Path.Combine(outDir, "runs.log");
        Scratch = Directory.CreateTempSubdirectory("zipllm-throughput-").FullName;
        ZstdPath = FindOnPath("zstd");
        TarPath = FindOnPath("tar");
        BashPath = FindOnPath("bash");
    }

    /// <summary>The CLI to measure: a native executable, or a .dll run with <c>dotnet</c>.</summary>
    public string Cli { get; }
    public string OutDir { get; }
    public string LogFile { get; }
    public string Scratch { get; }
    public string? ZstdPath { get; }
    public string? TarPath { get; }
    public string? BashPath { get; }

    /// <summary>Whether the zstd baseline can run (zstd, tar and bash are all on PATH).</summary>
    public bool HasZstd => ZstdPath is not null && TarPath is not null && BashPath is not null;

    /// <summary>Runs the zipllm CLI with <paramref name="args"/>; a non-zero exit is an error showing the log's tail.</summary>
    public ProcessResult Zipllm(params string[] args) =>
        Checked(Cli.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? ["dotnet", Cli, .. args] : [Cli, .. args]);

    /// <summary>Runs a bash script (with pipefail) with positional arguments.</summary>
    public ProcessResult Bash(string script, params string[] args) => Checked([BashPath!, "-o", "pipefail", "-c", script, "bash", .. args]);

    /// <summary>tar the <paramref name="folders"/> of <paramref name="parent"/> into zstd at a level and thread count.</summary>
    public ProcessResult ZstdCompress(string parent, IEnumerable<string> folders, int level, int threads, string archive) =>
        Bash("""tar -cf - -C "$1" -- "${@:5}" | zstd -q -f -"$2" -T"$3" -o "$4" """,
            [parent, level.ToString(), threads.ToString(), archive, .. folders]);

    /// <summary>zstd -d the archive into tar, unpacking into <paramref name="outDir"/>. zstd decompresses on one thread whatever -T says.</summary>
    public ProcessResult ZstdRestore(string archive, string outDir, int threads) =>
        Bash("""zstd -q -d -T"$3" -c -- "$1" | tar -xf - -C "$2" """, archive, outDir, threads.ToString());

    private ProcessResult Checked(IReadOnlyList<string> command)
    {
        ProcessResult result = ProcessMeter.Run(command, LogFile);
        if (result.ExitCode != 0)
        {
            string tail = string.Join('\n', File.ReadLines(LogFile).TakeLast(15));
            throw new InvalidOperationException($"'{string.Join(' ', command)}' exited with {result.ExitCode}; the end of {LogFile}:\n{tail}");
        }
        return result;
    }

    /// <summary>A fresh empty folder under the scratch folder.</summary>
    public string NewFolder(string name)
    {
        string path = Path.Combine(Scratch, name);
        DeleteFolder(path);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Flushes every file system's dirty pages (sync(2)).</summary>
    public void Sync() => sync();

    /// <summary>Reads every byte of <paramref name="files"/> and discards it, so the page cache holds them.</summary>
    public static void ReadThrough(IEnumerable<string> files)
    {
        byte[] buffer = new byte[1 << 20];
        foreach (string file in files)
        {
            using FileStream stream = new(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
            while (stream.Read(buffer) > 0)
            {
            }
        }
    }

    /// <summary>Whether dropping the page cache was refused (not permitted here).</summary>
    public bool DropRefused => _dropWarned;

    /// <summary>
    /// sync, then drop the page cache. Where that is not permitted (containers mount /proc/sys read-only),
    /// says so once and returns false: the runs go on with a warm cache.
    /// </summary>
    public bool DropCaches()
    {
        sync();
        try
        {
            File.WriteAllText("/proc/sys/vm/drop_caches", "3");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            if (!_dropWarned)
            {
                Console.WriteLine($"--drop-cache: not permitted here ({ex.Message.Trim()}); continuing with a warm cache.");
                _dropWarned = true;
            }
            return false;
        }
    }

    /// <summary>Writes a config for a fresh store in <paramref name="storageDir"/>, every path absolute.</summary>
    public static void WriteConfig(string path, string modelDir, string storageDir, string modelsToProcess, string baseFtPath, int threads)
    {
        using FileStream file = File.Create(path);
        using var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("model_dir", modelDir);
        json.WriteString("storage_dir", storageDir);
        json.WriteString("models_to_process", modelsToProcess);
        json.WriteString("base_ft_path", baseFtPath);
        json.WriteNumber("threads", threads);
        json.WriteEndObject();
    }

    public static long FolderSize(string path) =>
        Directory.Exists(path)
            ? new DirectoryInfo(path).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length)
            : 0;

    public static void DeleteFolder(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }

    public static string? FindOnPath(string program)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    public void Dispose()
    {
        try
        {
            DeleteFolder(Scratch);
        }
        catch (IOException ex)
        {
            Console.Error.WriteLine($"Could not remove the scratch folder {Scratch}: {ex.Message}");
        }
    }

    [LibraryImport("libc")]
    private static partial void sync();
}
