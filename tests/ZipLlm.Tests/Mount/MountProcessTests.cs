using Microsoft.Win32.SafeHandles;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Mount;

/// <summary><c>zipllm mount</c> as a real process on a real FUSE mount: what readers see, what they cannot do, and how it ends.</summary>
public sealed class MountProcessTests
{
    private const string PythonMmapReader = """
        import mmap, random, sys
        mounted, original = sys.argv[1], sys.argv[2]
        expected = open(original, 'rb').read()
        with open(mounted, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            assert len(m) == len(expected), (len(m), len(expected))
            rng = random.Random(7)
            for _ in range(500):
                start = rng.randrange(len(expected)); end = min(len(expected), start + rng.randrange(1, 70000))
                assert m[start:end] == expected[start:end], (start, end)
            assert m[:] == expected
        print('mmap ok')
        """;

    private const string PythonWrites = """
        import os, sys
        base = sys.argv[1]; f = os.path.join(base, 'config.json')
        ops = {
            'create': lambda: open(os.path.join(base, 'new'), 'w'),
            'open for writing': lambda: open(f, 'r+b'),
            'append': lambda: open(f, 'ab'),
            'truncate': lambda: os.truncate(f, 0),
            'unlink': lambda: os.unlink(f),
            'rename': lambda: os.rename(f, f + '.moved'),
            'mkdir': lambda: os.mkdir(os.path.join(base, 'd')),
            'rmdir': lambda: os.rmdir(base),
            'chmod': lambda: os.chmod(f, 0o644),
            'chown': lambda: os.chown(f, 1, 1),
            'utime': lambda: os.utime(f, (0, 0)),
            'symlink': lambda: os.symlink(f, os.path.join(base, 'link')),
            'link': lambda: os.link(f, os.path.join(base, 'hard')),
            'mkfifo': lambda: os.mkfifo(os.path.join(base, 'fifo')),
            'setxattr': lambda: os.setxattr(f, 'user.x', b'1'),
            'removexattr': lambda: os.removexattr(f, 'user.x'),
        }
        for name, op in ops.items():
            try:
                op(); print(name, 0)
            except OSError as e:
                print(name, e.errno)
        """;

    [FuseFact]
    public async Task Mount_EveryFileOfEveryModel_IsByteExactAndListedAsStored()
    {
        using MountedStore mounted = await MountedStore.CreateAsync();

        Assert.Equal(mounted.Family.Models.Select(m => m.Id.Org).Distinct().Order(StringComparer.Ordinal),
            Directory.EnumerateDirectories(mounted.MountPoint).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (SyntheticModel model in mounted.Family.Models)
        {
            string folder = mounted.PathOf(model);
            Assert.Equal(MountedStore.FilesOf(model),
                Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(folder, f)).Order(StringComparer.Ordinal));
            foreach (string file in MountedStore.FilesOf(model))
            {
                byte[] expected = File.ReadAllBytes(Path.Combine(model.Folder, file));
                Assert.True(expected.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(folder, file))), $"{model.Id}/{file} differs");
                var info = new FileInfo(Path.Combine(folder, file));
                Assert.Equal(expected.Length, info.Length);
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead, info.UnixFileMode);
            }
        }
        // A second look (the kernel's page cache) is the same; cmp, an outside reader, agrees.
        SyntheticModel full = mounted.Family.Models.First(m => m.Kind == SyntheticModelKind.FullFinetune);
        foreach (string file in MountedStore.FilesOf(full))
        {
            CliResult cmp = MountedStore.Run("cmp", Path.Combine(full.Folder, file), Path.Combine(mounted.PathOf(full), file));
            Assert.True(cmp.ExitCode == 0, cmp.StandardOutput + cmp.StandardError);
        }
        // Folders and files carry the time the model was stored.
        using ZipLlmStore store = ZipLlmStore.Open(mounted.Dir.Combine("store"));
        foreach (StoredModel stored in store.ListModels())
        {
            DateTime folderTime = Directory.GetLastWriteTimeUtc(Path.Combine(mounted.MountPoint, stored.Id));
            Assert.Equal(stored.StoredAt.UtcDateTime, folderTime, TimeSpan.FromMilliseconds(1));
        }
    }

    [FuseFact]
    public async Task Mount_RandomPreadsMmapAndConcurrentReaders_AreByteExact()
    {
        using MountedStore mounted = await MountedStore.CreateAsync("--cache-mb", "1", "--threads", "2");
        var files = mounted.Family.Models.SelectMany(m => MountedStore.FilesOf(m).Select(f => (Original: Path.Combine(m.Folder, f), Mounted: Path.Combine(mounted.PathOf(m), f)))).ToList();
        var largest = files.OrderByDescending(f => new FileInfo(f.Original).Length).First();

        // Random preads of every file, from many readers at once: several of one file, and of many files.
        var readers = Enumerable.Range(0, 8).Select(reader => Task.Run(() =>
        {
            var random = new Random(reader);
            foreach (var (original, path) in reader % 2 == 0 ? [largest] : files)
            {
                byte[] expected = File.ReadAllBytes(original);
                using SafeFileHandle handle = File.OpenHandle(path);
                for (int i = 0; i < 40; i++)
                {
                    long offset = random.NextInt64(0, expected.Length + 10);
                    var buffer = new byte[random.Next(1, 200_000)];
                    int read = RandomAccess.Read(handle, buffer, offset);
                    int wanted = (int)Math.Clamp(expected.Length - offset, 0, buffer.Length);
                    Assert.Equal(wanted, read);
                    Assert.True(expected.AsSpan((int)Math.Min(offset, expected.Length), read).SequenceEqual(buffer.AsSpan(0, read)), $"{path} at {offset}+{buffer.Length}");
                }
            }
        })).ToArray();
        await Task.WhenAll(readers).WaitAsync(MountedStore.Timeout);

        // A real mmap consumer.
        CliResult python = MountedStore.Run("python3", "-c", PythonMmapReader, largest.Mounted, largest.Original);
        Assert.True(python.ExitCode == 0 && python.StandardOutput.Contains("mmap ok"), python.StandardOutput + python.StandardError);
    }

    [FuseFact]
    public async Task Mount_ReaderKilledMidRead_LeavesTheMountServing()
    {
        // No cache: every read decodes, so the reader is killed with reads in flight (the kernel interrupts them).
        using MountedStore mounted = await MountedStore.CreateAsync("--cache-mb", "0");
        SyntheticModel model = mounted.Family.Models.First(m => m.Kind == SyntheticModelKind.FullFinetune);
        string largest = MountedStore.FilesOf(model).OrderByDescending(f => new FileInfo(Path.Combine(model.Folder, f)).Length).First();
        var start = new System.Diagnostics.ProcessStartInfo("python3") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string argument in new[] { "-c", "import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)\nprint('reading', flush=True)\nwhile True:\n    for o in range(0, os.fstat(fd).st_size, 65536): os.pread(fd, 65536, o)", Path.Combine(mounted.PathOf(model), largest) })
        {
            start.ArgumentList.Add(argument);
        }
        using (System.Diagnostics.Process reader = System.Diagnostics.Process.Start(start)!)
        {
            Assert.Equal("reading", await reader.StandardOutput.ReadLineAsync().WaitAsync(MountedStore.Timeout));
            reader.Kill();
            await reader.WaitForExitAsync().WaitAsync(MountedStore.Timeout);
        }

        Assert.False(mounted.Process!.Process.HasExited, mounted.Process.StandardError);
        foreach (string file in MountedStore.FilesOf(model))
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(model.Folder, file)), File.ReadAllBytes(Path.Combine(mounted.PathOf(model), file)));
        }
    }

    [FuseFact]
    public async Task Mount_WritesOfEveryKind_AreEROFS()
    {
        using MountedStore mounted = await MountedStore.CreateAsync();
        SyntheticModel model = mounted.Family.Models[0];

        CliResult python = MountedStore.Run("python3", "-c", PythonWrites, mounted.PathOf(model));

        Assert.True(python.ExitCode == 0, python.StandardError);
        string[] lines = python.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(16, lines.Length);
        Assert.All(lines, line => Assert.EndsWith(" 30", line)); // EROFS
        Assert.Equal(MountedStore.FilesOf(model), Directory.EnumerateFiles(mounted.PathOf(model), "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(mounted.PathOf(model), f)).Order(StringComparer.Ordinal));
    }

    [FuseFact]
    public async Task Mount_FusermountU_UnmountsAndExits0()
    {
        using MountedStore mounted = await MountedStore.CreateAsync();
        Assert.True(mounted.IsMounted);

        CliResult unmount = MountedStore.Run("fusermount3", "-u", mounted.MountPoint);

        Assert.True(unmount.ExitCode == 0, unmount.StandardError);
        CliResult result = await mounted.Process!.WaitAsync(MountedStore.Timeout);
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("Unmounted", result.StandardError);
        Assert.False(mounted.IsMounted);
    }

    [FuseFact]
    public async Task Mount_LazyUnmountWithAFileOpen_ExitsOnceItIsClosed()
    {
        using MountedStore mounted = await MountedStore.CreateAsync();
        SyntheticModel model = mounted.Family.Models[0];
        string file = MountedStore.FilesOf(model).First();
        using (FileStream open = File.OpenRead(Path.Combine(mounted.PathOf(model), file)))
        {
            Assert.Equal(0, MountedStore.Run("fusermount3", "-u", "-z", mounted.MountPoint).ExitCode);
            Assert.False(mounted.IsMounted);
            // The open file still reads.
            var buffer = new byte[open.Length];
            open.ReadExactly(buffer);
            Assert.Equal(File.ReadAllBytes(Path.Combine(model.Folder, file)), buffer);
        }

        CliResult result = await mounted.Process!.WaitAsync(MountedStore.Timeout);

        Assert.True(result.ExitCode == 0, result.StandardError);
    }

    [FuseFact]
    public async Task Mount_SigTerm_UnmountsAndExits130()
    {
        using MountedStore mounted = await MountedStore.CreateAsync();
        using FileStream open = File.OpenRead(Path.Combine(mounted.PathOf(mounted.Family.Models[0]), MountedStore.FilesOf(mounted.Family.Models[0]).First()));

        Signals.Send(mounted.Process!.Process, Signals.SigTerm);

        CliResult result = await mounted.Process.WaitAsync(MountedStore.Timeout);
        Assert.True(result.ExitCode == 130, result.StandardError);
        Assert.False(mounted.IsMounted);
    }

    [FuseFact]
    public async Task Mount_KilledProcess_LeavesAMountPointFusermountClearsForANewMount()
    {
        using MountedStore mounted = await MountedStore.CreateAsync();
        mounted.Process!.Process.Kill();
        await mounted.Process.WaitAsync(MountedStore.Timeout);
        Assert.True(mounted.IsMounted);

        // A mount over the stale one is refused, naming the way out.
        CliResult refused = await CliProcess.RunAsync(["mount", mounted.Config, mounted.MountPoint]);
        Assert.Equal(4, refused.ExitCode);
        Assert.Contains("fusermount3 -u", refused.StandardError);

        Assert.Equal(0, MountedStore.Run("fusermount3", "-u", mounted.MountPoint).ExitCode);
        Assert.False(mounted.IsMounted);
        mounted.Mount();
        SyntheticModel model = mounted.Family.Models[0];
        string file = MountedStore.FilesOf(model).First();
        Assert.Equal(File.ReadAllBytes(Path.Combine(model.Folder, file)), File.ReadAllBytes(Path.Combine(mounted.PathOf(model), file)));
    }

    [FuseFact]
    public async Task Mount_ModelRemovedThenStoredAgain_VanishesThenAppears()
    {
        using MountedStore mounted = await MountedStore.CreateAsync();
        SyntheticModel model = mounted.Family.Models.First(m => m.Kind == SyntheticModelKind.LoraFinetune);
        string file = MountedStore.FilesOf(model).First(f => f.EndsWith(".safetensors", StringComparison.Ordinal));
        byte[] expected = File.ReadAllBytes(Path.Combine(model.Folder, file));
        using SafeFileHandle open = File.OpenHandle(Path.Combine(mounted.PathOf(model), file));

        CliResult remove = await CliProcess.RunAsync(["remove", mounted.Config, model.Id.ToString()], timeout: MountedStore.Timeout);
        Assert.True(remove.ExitCode == 0, remove.StandardError);

        Assert.True(MountedStore.Eventually(() => !Directory.Exists(mounted.PathOf(model))), "the removed model is still listed");
        Assert.DoesNotContain(model.Id.Name, Directory.EnumerateDirectories(Path.Combine(mounted.MountPoint, model.Id.Org)).Select(Path.GetFileName));
        // A file opened before: its bytes or an error, never other bytes.
        var buffer = new byte[expected.Length];
        try
        {
            int read = RandomAccess.Read(open, buffer, 0);
            Assert.True(expected.AsSpan(0, read).SequenceEqual(buffer.AsSpan(0, read)));
        }
        catch (IOException)
        {
            // EIO or ENOENT: the model is gone.
        }

        CliResult compress = await CliProcess.RunAsync(["compress", mounted.Config, "-q"], timeout: MountedStore.Timeout);
        Assert.True(compress.ExitCode == 0, compress.StandardError);
        Assert.True(MountedStore.Eventually(() => Directory.Exists(mounted.PathOf(model))), "the model stored again did not appear");
        Assert.Equal(expected, File.ReadAllBytes(Path.Combine(mounted.PathOf(model), file)));
    }

    [FuseFact]
    public async Task Mount_FileStoredAgainWithOtherBytesWhileOpen_TheOpenFileNeverReadsTheNewBytes()
    {
        using MountedStore mounted = await MountedStore.CreateAsync();
        SyntheticModel model = mounted.Family.Models.First(m => m.Kind == SyntheticModelKind.LoraFinetune);
        string original = Path.Combine(model.Folder, "config.json");
        byte[] before = File.ReadAllBytes(original);
        using SafeFileHandle open = File.OpenHandle(Path.Combine(mounted.PathOf(model), "config.json"));

        // Removed and stored again under the same id with other bytes of the same length, while the file is open.
        CliResult remove = await CliProcess.RunAsync(["remove", mounted.Config, model.Id.ToString()], timeout: MountedStore.Timeout);
        Assert.True(remove.ExitCode == 0, remove.StandardError);
        byte[] after = [.. before];
        after[before.Length / 2] ^= 0x01;
        File.WriteAllBytes(original, after);
        CliResult compress = await CliProcess.RunAsync(["compress", mounted.Config, "-q"], timeout: MountedStore.Timeout);
        Assert.True(compress.ExitCode == 0, compress.StandardError);

        // The open file is the version opened: its bytes or EIO, never the new version's.
        var buffer = new byte[before.Length];
        IOException failed = Assert.ThrowsAny<IOException>(() => RandomAccess.Read(open, buffer, 0));
        Assert.DoesNotContain(failed.Message, "No such file", StringComparison.Ordinal);
        Assert.True(mounted.Process!.WaitForError("(EIO)", MountedStore.Timeout), mounted.Process.StandardError);
        // Opened afresh (once the listing is read again), the path gives the new version.
        bool ReadsNewVersion()
        {
            try
            {
                return File.ReadAllBytes(Path.Combine(mounted.PathOf(model), "config.json")).AsSpan().SequenceEqual(after);
            }
            catch (IOException)
            {
                return false; // listed before the new version was
            }
        }
        Assert.True(MountedStore.Eventually(ReadsNewVersion), "the version stored again is not what the path reads");
    }

    [FuseFact]
    public async Task Mount_DamagedObject_GivesEIONeverWrongBytes()
    {
        using MountedStore mounted = await MountedStore.CreateAsync();
        Assert.True(mounted.Process!.Process.HasExited is false);
        // Flip a byte in the middle of the largest object: some chunk of some model fails its checksum.
        string largest = Directory.EnumerateFiles(mounted.Dir.Combine("store", "objects"), "*", SearchOption.AllDirectories)
            .OrderByDescending(f => new FileInfo(f).Length).First();
        byte[] bytes = File.ReadAllBytes(largest);
        bytes[bytes.Length / 2] ^= 0x55;
        File.WriteAllBytes(largest, bytes);

        int failures = 0;
        foreach (SyntheticModel model in mounted.Family.Models)
        {
            foreach (string file in MountedStore.FilesOf(model))
            {
                byte[] expected = File.ReadAllBytes(Path.Combine(model.Folder, file));
                try
                {
                    Assert.True(expected.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(mounted.PathOf(model), file))), $"{model.Id}/{file} read wrong bytes");
                }
                catch (IOException)
                {
                    failures++;
                }
            }
        }

        Assert.True(failures > 0, "no read failed");
        // The console logger writes on a thread of its own: the line may come a little after the failed read.
        Assert.True(mounted.Process.WaitForError("(EIO)", MountedStore.Timeout), mounted.Process.StandardError);
        Assert.Contains("object", mounted.Process.StandardError);
    }

    [Fact]
    public async Task Mount_MountPointMissingOrNotEmpty_IsExit4NamingIt()
    {
        using var dir = new TempDir();
        (_, string config) = await CompressedFamily.CreateAsync(dir);
        Directory.CreateDirectory(dir.Combine("full"));
        File.WriteAllText(dir.Combine("full", "x"), "x");

        CliResult missing = await CliProcess.RunAsync(["mount", config, dir.Combine("missing")]);
        CliResult full = await CliProcess.RunAsync(["mount", config, dir.Combine("full")]);

        Assert.Equal(4, missing.ExitCode);
        Assert.Contains("does not exist", missing.StandardError);
        Assert.Equal(4, full.ExitCode);
        Assert.Contains("not empty", full.StandardError);
    }

    [FuseFact]
    public async Task Mount_AsAnotherUser_MountsThroughFusermount3AndEndsBothWays()
    {
        // In a mount namespace of its own (nothing outlives it): a /dev/fuse that any user may open (this machine's
        // may be root's only; fusermount3 opens it as the user), and the CLI run as nobody, which mounts through
        // fusermount3 and its socket. Then: the files, SIGTERM (130, unmounted), again and fusermount3 -u (0).
        using var dir = new TempDir();
        (SyntheticFamilyResult family, string config) = await CompressedFamily.CreateAsync(dir);
        SyntheticModel model = family.Models.First(m => m.Kind == SyntheticModelKind.FullFinetune);
        string cli = CliProcess.CliPath.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? $"dotnet '{CliProcess.CliPath}'" : $"'{CliProcess.CliPath}'";
        string script = $$"""
            set -u
            cd '{{dir.Path}}'
            mkdir mnt && chown 65534:65534 mnt && chmod -R a+rX .
            mknod -m 666 fusedev c 10 229 && mount --bind fusedev /dev/fuse
            nobody="setpriv --reuid=65534 --regid=65534 --clear-groups -- env HOME=/tmp DOTNET_CLI_TELEMETRY_OPTOUT=1"
            mounted() {
              for _ in $(seq 600); do grep -qs "Mounted " mount.log && return 0; kill -0 $pid 2>/dev/null || return 1; sleep 0.1; done
              return 1
            }
            $nobody {{cli}} mount config.json mnt 2>mount.log & pid=$!
            mounted || { echo "not mounted"; cat mount.log; exit 1; }
            $nobody diff -r '{{model.Folder}}' 'mnt/{{model.Id}}' && echo "files: same"
            kill -TERM $pid; wait $pid; echo "sigterm exit: $?"
            grep -q " $PWD/mnt " /proc/self/mountinfo && echo "still mounted"
            $nobody {{cli}} mount config.json mnt 2>mount.log & pid=$!
            mounted || { echo "not mounted again"; cat mount.log; exit 1; }
            $nobody fusermount3 -u mnt; wait $pid; echo "fusermount exit: $?"
            grep -q " $PWD/mnt " /proc/self/mountinfo && echo "still mounted"
            exit 0
            """;

        CliResult run = MountedStore.Run("unshare", "-m", "--propagation", "private", "bash", "-c", script);

        string output = run.StandardOutput + run.StandardError;
        Assert.True(run.ExitCode == 0, output);
        Assert.Contains("files: same", output);
        Assert.Contains("sigterm exit: 130", output);
        Assert.Contains("fusermount exit: 0", output);
        Assert.DoesNotContain("still mounted", output);
    }
}
