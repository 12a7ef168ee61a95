using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary><c>zipllm serve</c> as a real process, asked by curl and aria2c as users script them.</summary>
[Collection("Serve processes")]
public sealed class ServeProcessTests(ServedFamily served) : IClassFixture<ServedFamily>
{
    private const string Base = "synthetic/llama-base";
    private const string Shard = "model-00001-of-00002.safetensors";

    private byte[] Original(string model, string path) => File.ReadAllBytes(Path.Combine(served.FolderOf(model), path));

    [NeedsFact("curl")]
    public async Task Curl_GetAndHead_BytesAndHubHeaders()
    {
        byte[] original = Original(Base, Shard);
        string sha256 = Convert.ToHexStringLower(SHA256.HashData(original));
        CurlResult get = await Curl.RunAsync(served.Open.Url($"/{Base}/resolve/main/{Shard}"));
        Assert.Equal(200, get.Status);
        Assert.Equal(original, get.Body);
        Assert.Equal($"\"{sha256}\"", get.Header("ETag"));
        Assert.Equal($"\"{sha256}\"", get.Header("X-Linked-Etag"));
        Assert.Equal(original.Length.ToString(), get.Header("X-Linked-Size"));
        Assert.Equal(original.Length.ToString(), get.Header("Content-Length"));
        Assert.Equal("bytes", get.Header("Accept-Ranges"));
        Assert.Matches("^[0-9a-f]{40}$", get.Header("X-Repo-Commit"));
        Assert.NotNull(get.Header("Last-Modified"));

        CurlResult head = await Curl.RunAsync(served.Open.Url($"/{Base}/resolve/main/{Shard}"), "-I");
        Assert.Equal(200, head.Status);
        Assert.Equal(get.Header("ETag"), head.Header("ETag"));
        Assert.Equal(original.Length.ToString(), head.Header("Content-Length"));

        // The commit is stable: a second server over the same store names the same one, and it resolves.
        CurlResult byCommit = await Curl.RunAsync(served.Guarded.Url($"/{Base}/resolve/{get.Header("X-Repo-Commit")}/config.json"),
            "-H", $"Authorization: Bearer {ServedFamily.AcmeToken}");
        Assert.Equal(200, byCommit.Status);
        Assert.Equal(get.Header("X-Repo-Commit"), byCommit.Header("X-Repo-Commit"));
        Assert.Equal(Original(Base, "config.json"), byCommit.Body);
    }

    [NeedsTheory("curl")]
    [InlineData("bytes=5-2", 200, null)]
    [InlineData("bytes=0-0,5-9", 200, null)]
    [InlineData("bytes=-0", 416, "bytes */{size}")]
    [InlineData("bytes={size}-", 416, "bytes */{size}")]
    [InlineData("bytes=-100", 206, "bytes {size-100}-{size-1}/{size}")]
    [InlineData("bytes=1000-", 206, "bytes 1000-{size-1}/{size}")]
    [InlineData("bytes=0-0", 206, "bytes 0-0/{size}")]
    [InlineData("bytes=70000-70099", 206, "bytes 70000-70099/{size}")]
    public async Task Curl_Range_StatusContentRangeAndExactBytes(string range, int status, string? contentRange)
    {
        byte[] original = Original(Base, Shard);
        int size = original.Length;
        string Fill(string s) => s.Replace("{size-100}", (size - 100).ToString()).Replace("{size-1}", (size - 1).ToString()).Replace("{size}", size.ToString());
        CurlResult result = await Curl.RunAsync(served.Open.Url($"/{Base}/resolve/main/{Shard}"), "-H", $"Range: {Fill(range)}");
        Assert.Equal(status, result.Status);
        Assert.Equal(contentRange is null ? null : Fill(contentRange), result.Header("Content-Range"));
        if (status == 200)
        {
            Assert.Equal(original, result.Body);
        }
        else if (status == 206)
        {
            string[] span = result.Header("Content-Range")!.Split(' ', '-', '/');
            int first = int.Parse(span[1]), last = int.Parse(span[2]);
            Assert.Equal(original[first..(last + 1)], result.Body);
        }
    }

    [NeedsFact("curl")]
    public async Task Curl_IfNoneMatch_304()
    {
        CurlResult head = await Curl.RunAsync(served.Open.Url($"/{Base}/resolve/main/config.json"), "-I");
        CurlResult again = await Curl.RunAsync(served.Open.Url($"/{Base}/resolve/main/config.json"), "-H", $"If-None-Match: {head.Header("ETag")}");
        Assert.Equal(304, again.Status);
        Assert.Empty(again.Body);
    }

    [NeedsFact("curl")]
    public async Task Curl_ResumeOfCutDownload_WholeFileExact()
    {
        byte[] original = Original(Base, Shard);
        using var dir = new TempDir();
        string output = dir.Combine("shard");
        // A download cut after 10,000 bytes, as a dropped connection leaves it.
        File.WriteAllBytes(output, original[..10_000]);
        (int exit, string log) = await Curl.ExecAsync("curl", "-sS", "-C", "-", "-o", output, "-w", "%{http_code}", served.Open.Url($"/{Base}/resolve/main/{Shard}"));
        Assert.True(exit == 0, log);
        Assert.StartsWith("206", log);
        Assert.Equal(original, File.ReadAllBytes(output));
    }

    [NeedsFact("curl", "aria2c")]
    public async Task Aria2c_EightConnections_ByteExactFromParallelRanges()
    {
        using var dir = new TempDir();
        int before = Count(served.Open.Cli.StandardError, "GET /big/blob/resolve/main/model.safetensors 206");
        (int exit, string log) = await Curl.ExecAsync("aria2c", "-q", "-x", "8", "-s", "8", "--min-split-size=1M", "--allow-overwrite=true",
            "-d", dir.Path, "-o", "model.safetensors", served.Open.Url($"/{ServedFamily.BigModel}/resolve/main/model.safetensors"));
        Assert.True(exit == 0, log);
        Assert.Equal(Original(ServedFamily.BigModel, "model.safetensors"), File.ReadAllBytes(dir.Combine("model.safetensors")));
        // Each connection asked for a range of its own.
        Assert.True(Signals.WaitUntil(served.Open.Cli.Process,
            () => Count(served.Open.Cli.StandardError, "GET /big/blob/resolve/main/model.safetensors 206") - before >= 4), served.Open.Cli.StandardError);
    }

    [NeedsTheory("curl")]
    [InlineData(null, 401)]
    [InlineData("tok_wrong", 401)]
    [InlineData(ServedFamily.OtherToken, 404)]
    [InlineData(ServedFamily.AcmeToken, 200)]
    public async Task Curl_Tokens_NothingServedOrListedButToTheCoveringToken(string? token, int status)
    {
        string[] auth = token is null ? [] : ["-H", $"Authorization: Bearer {token}"];
        CurlResult file = await Curl.RunAsync(served.Guarded.Url($"/{Base}/resolve/main/config.json"), auth);
        Assert.Equal(status, file.Status);
        if (status == 200)
        {
            Assert.Equal(Original(Base, "config.json"), file.Body);
        }
        else
        {
            Assert.Equal("RepoNotFound", file.Header("X-Error-Code"));
            Assert.DoesNotContain("model_type", Encoding.UTF8.GetString(file.Body));
        }
        CurlResult list = await Curl.RunAsync(served.Guarded.Url("/api/models"), auth);
        using JsonDocument models = JsonDocument.Parse(list.Body);
        string[] ids = [.. models.RootElement.EnumerateArray().Select(m => m.GetProperty("id").GetString()!)];
        if (status == 200)
        {
            Assert.Contains(Base, ids);
            Assert.All(ids, id => Assert.StartsWith("synthetic/", id));
        }
        else
        {
            Assert.Empty(ids);
        }
        // The server never writes a token into its log.
        Assert.DoesNotContain("tok_", served.Guarded.Cli.StandardError);
    }

    [NeedsTheory("curl")]
    [InlineData("/synthetic/llama-base/resolve/main/../../../../etc/passwd")]
    [InlineData("/synthetic/llama-base/resolve/main/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd")]
    [InlineData("/synthetic/llama-base/resolve/main/..%2f..%2f..%2f..%2fetc%2fpasswd")]
    [InlineData("/synthetic/llama-base/resolve/main/%2fetc%2fpasswd")]
    [InlineData("/synthetic/llama-base/resolve/main//etc/passwd")]
    [InlineData("/synthetic/llama-base/resolve/main/..%5c..%5cconfig.json")]
    [InlineData("/synthetic/llama-base/resolve/main/config.json%00")]
    [InlineData("/synthetic/llama-base/resolve/main/%00")]
    [InlineData("/synthetic/..%2fsynthetic%2fllama-base/resolve/main/config.json")]
    [InlineData("/api/models/synthetic/llama-base/tree/main/..%2f..%2f")]
    public async Task Curl_HostilePath_400Or404NeverAFile(string path)
    {
        CurlResult result = await Curl.RunAsync(served.Open.Url(path));
        Assert.True(result.Status is 400 or 404, $"{path}: {result.Status}");
        Assert.DoesNotContain("root:", Encoding.UTF8.GetString(result.Body));
        // The server is still there for the next client.
        Assert.Equal(200, (await Curl.RunAsync(served.Open.Url($"/{Base}/resolve/main/config.json"))).Status);
    }

    [NeedsFact("curl")]
    public async Task Server_IdleConnectionsAndAStalledReader_OthersStillServed()
    {
        var idle = new List<TcpClient>();
        try
        {
            for (int i = 0; i < 1000; i++)
            {
                var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", served.Open.Address.Port);
                idle.Add(client);
            }
            // One client asks for the 8 MiB file and reads nothing of it.
            NetworkStream stalled = idle[0].GetStream();
            await stalled.WriteAsync(Encoding.ASCII.GetBytes("GET /big/blob/resolve/main/model.safetensors HTTP/1.1\r\nHost: x\r\n\r\n"));
            CurlResult other = await Curl.RunAsync(served.Open.Url($"/{Base}/resolve/main/{Shard}"));
            Assert.Equal(200, other.Status);
            Assert.Equal(Original(Base, Shard), other.Body);
        }
        finally
        {
            foreach (TcpClient client in idle)
            {
                client.Dispose();
            }
        }
    }

    private static int Count(string text, string part)
    {
        int count = 0;
        for (int at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + part.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    [NeedsFact("curl")]
    public async Task Server_OneMegabyteRequestLine_RefusedAndServerServes()
    {
        using (var client = new TcpClient())
        {
            await client.ConnectAsync("127.0.0.1", served.Open.Address.Port);
            NetworkStream stream = client.GetStream();
            try
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /" + new string('a', 1 << 20) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
                string status = await new StreamReader(stream, Encoding.ASCII).ReadLineAsync() ?? "";
                Assert.DoesNotContain(" 200 ", status);
            }
            catch (IOException)
            {
                // Refused by closing the connection before the whole line was read.
            }
        }
        Assert.Equal(200, (await Curl.RunAsync(served.Open.Url($"/{Base}/resolve/main/config.json"))).Status);
    }
}

/// <summary>Servers over stores that change under them, or break; each test has a store of its own.</summary>
[Collection("Serve processes")]
public sealed class ServeLifecycleTests
{
    private const string Late = "synthetic/mixed-f32";

    [NeedsFact("curl")]
    public async Task Serve_ModelCompressedThenRemovedWhileServing_AppearsThenDisappears()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        string list = dir.Combine("test_models.txt");
        string[] all = File.ReadAllLines(list);
        File.WriteAllLines(list, all.Where(l => l.Trim() != Late));
        string config = dir.Combine("config.json");
        Assert.Equal(0, (await CliProcess.RunAsync(["compress", config, "-q"], timeout: TimeSpan.FromMinutes(3))).ExitCode);
        using ServeProcess server = ServeProcess.Start(config);
        string url = server.Url($"/api/models/{Late}");
        Assert.Equal(404, (await Curl.RunAsync(url)).Status);

        File.WriteAllLines(list, all);
        Assert.Equal(0, (await CliProcess.RunAsync(["compress", config, "-q"], timeout: TimeSpan.FromMinutes(3))).ExitCode);
        Assert.True(await EventuallyAsync(url, 200), "the model stored meanwhile never appeared");
        CurlResult file = await Curl.RunAsync(server.Url($"/{Late}/resolve/main/model.safetensors"));
        Assert.Equal(File.ReadAllBytes(dir.Combine("models", "synthetic_mixed-f32", "model.safetensors")), file.Body);

        CliResult remove = await CliProcess.RunAsync(["remove", config, Late, "-q"], timeout: TimeSpan.FromMinutes(2));
        Assert.True(remove.ExitCode == 0, remove.StandardError);
        Assert.True(await EventuallyAsync(url, 404), "the model removed meanwhile never disappeared");
        Assert.Equal(404, (await Curl.RunAsync(server.Url($"/{Late}/resolve/main/model.safetensors"))).Status);
    }

    [NeedsFact("curl")]
    public async Task Serve_DamagedObject_500OrCutNeverWrongBytesAndLogNamesIt()
    {
        using var dir = new TempDir();
        var family = CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        Assert.Equal(0, (await CliProcess.RunAsync(["compress", config, "-q"], timeout: TimeSpan.FromMinutes(3))).ExitCode);
        // The largest object: a solo-coded tensor of the base that every finetune is decoded against.
        string victim = Directory.EnumerateFiles(dir.Combine("store", "objects"), "*", SearchOption.AllDirectories).MaxBy(f => new FileInfo(f).Length)!;
        byte[] bytes = File.ReadAllBytes(victim);
        for (int i = bytes.Length / 2; i < bytes.Length / 2 + 64; i++)
        {
            bytes[i] ^= 0x5A;
        }
        File.WriteAllBytes(victim, bytes);
        using ServeProcess server = ServeProcess.Start(config);
        int failures = 0;
        foreach (var model in family.Models)
        {
            foreach (string path in Directory.EnumerateFiles(model.Folder, "*", SearchOption.AllDirectories))
            {
                string relative = Path.GetRelativePath(model.Folder, path).Replace('\\', '/');
                CurlResult result = await Curl.RunAsync(server.Url($"/{model.Id}/resolve/main/{relative}"));
                if (result.Status == 200 && result.ExitCode == 0)
                {
                    Assert.Equal(File.ReadAllBytes(path), result.Body);
                    continue;
                }
                failures++;
                // A 500 before any byte, or a transfer cut short (curl 18): never a whole body of wrong bytes.
                Assert.True(result.Status == 500 || result.ExitCode == 18, $"{model.Id}/{relative}: {result.Status}, curl {result.ExitCode}");
                Assert.DoesNotContain(Path.GetFileName(victim), Encoding.UTF8.GetString(result.Body));
            }
        }
        Assert.True(failures > 0, "no file needed the damaged object");
        Assert.Contains(Path.GetFileName(victim)[..12], server.Cli.StandardError);
    }

    [NeedsFact("curl")]
    public async Task Serve_Sigterm_Exit130()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        Assert.Equal(0, (await CliProcess.RunAsync(["compress", config, "-q"], timeout: TimeSpan.FromMinutes(3))).ExitCode);
        using ServeProcess server = ServeProcess.Start(config);
        Assert.Equal(200, (await Curl.RunAsync(server.Url("/api/models"))).Status);
        Signals.Send(server.Cli.Process, Signals.SigTerm);
        CliResult result = await server.Cli.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(130, result.ExitCode);
    }

    [Theory]
    [InlineData("--cache-mb", "lots", "--cache-mb")]
    [InlineData("--host", "example.org", "--host")]
    [InlineData("--port", "70000", "--port")]
    [InlineData("--threads", "0", "--threads")]
    public async Task Serve_BadOption_UsageErrorNamingIt(string option, string value, string named)
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        CliResult result = await CliProcess.RunAsync(["serve", dir.Combine("config.json"), "--port", "0", option, value]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(named, result.StandardError);
        Assert.DoesNotContain("Listening", result.StandardError);
    }

    [Fact]
    public async Task Serve_MalformedTokenFile_InvalidInputNamingTheLineNotTheToken()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        File.WriteAllText(dir.Combine("tokens.txt"), "secret_without_patterns\n");
        CliResult result = await CliProcess.RunAsync(["serve", dir.Combine("config.json"), "--port", "0", "--tokens", dir.Combine("tokens.txt")]);
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("line 1", result.StandardError);
        Assert.DoesNotContain("secret_without_patterns", result.StandardError);
    }

    [Fact]
    public async Task Serve_PublicAddressWithoutTokens_UsageErrorNamingPublic()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        CliResult result = await CliProcess.RunAsync(["serve", dir.Combine("config.json"), "--host", "0.0.0.0", "--port", "0"]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--public", result.StandardError);
    }

    /// <summary>Asks until <paramref name="url"/> answers <paramref name="status"/> (the listing lasts 2 s), or gives up after a generous deadline.</summary>
    private static async Task<bool> EventuallyAsync(string url, int status)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(1))
        {
            if ((await Curl.RunAsync(url)).Status == status)
            {
                return true;
            }
            await Task.Delay(100);
        }
        return false;
    }
}
