using System.Diagnostics;
using ZipLlm.Store.Backends;

namespace ZipLlm.Tests.TestSupport;

/// <summary>
/// A real S3 server for the tests: a one-node Ceph cluster with a RADOS Gateway on 127.0.0.1, started by
/// <c>tests/s3/rgw.sh</c> the first time a test asks for it and stopped when the test process exits (and, through
/// the script's watchdog on this process, even when it is killed). Each test takes a bucket of its own.
/// Needs the Debian packages ceph-mon, ceph-osd and radosgw (<c>.ci/run</c> installs them).
/// </summary>
internal sealed class RgwGateway
{
    private static readonly Lazy<RgwGateway> s_shared = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly string _dir;

    private RgwGateway(string dir, IReadOnlyDictionary<string, string> environment, IReadOnlyDictionary<string, string> readerEnvironment)
    {
        _dir = dir;
        Environment = environment;
        ReaderEnvironment = readerEnvironment;
    }

    /// <summary>The gateway of this test run, started on first use.</summary>
    public static RgwGateway Shared => s_shared.Value;

    /// <summary>
    /// The variables a client needs, as the AWS tools read them (endpoint, keys, region), and one that keeps the
    /// SDK from ever asking a cloud's instance metadata for credentials.
    /// </summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>
    /// The same for a second user of the gateway, <see cref="ReaderUser"/>, who may do nothing but what a bucket's
    /// policy grants it (<see cref="GrantRead"/>): a hub's read-only key.
    /// </summary>
    public IReadOnlyDictionary<string, string> ReaderEnvironment { get; }

    /// <summary>The reader's user id (<c>tests/s3/rgw.sh</c> makes it).</summary>
    public const string ReaderUser = "zipllm-reader";

    /// <summary>A fresh bucket's store URL: <c>s3://zipllm-test-…/store</c> (the bucket is made by the store's creation).</summary>
    public static string NewStoreUrl(string prefix = "store") => $"s3://zipllm-test-{Guid.NewGuid():N}"[..36] + "/" + prefix;

    /// <summary>
    /// A backend on the gateway, as <see cref="Store.Backends.StoreAccess"/> makes it but for its environment; with
    /// <paramref name="hostKey"/> it is another machine's, whose processes this one cannot see. The loopback network
    /// delays no request: leases are stale after their duration plus <paramref name="requestLifetime"/> (none unless
    /// given), not the 20 minutes a real network is given. <paramref name="endpoint"/> replaces the gateway's (a proxy).
    /// </summary>
    public S3Backend Backend(string url, int maxRequests = 4, TimeSpan? leaseDuration = null, string? hostKey = null,
        TimeSpan? requestLifetime = null, Uri? endpoint = null, TimeProvider? time = null) =>
        new(S3Location.Parse(url), maxRequests,
            name => endpoint is not null && name == S3Connection.EndpointS3Variable ? endpoint.ToString().TrimEnd('/')
                : Environment.TryGetValue(name, out string? value) ? value : null,
            leaseDuration, hostKey ?? S3Locks.LocalHostKey(), requestLifetime ?? TimeSpan.Zero, time);

    /// <summary>A backend on the gateway with <see cref="ReaderUser"/>'s keys.</summary>
    public S3Backend ReaderBackend(string url) =>
        new(S3Location.Parse(url), 4, name => ReaderEnvironment.TryGetValue(name, out string? value) ? value : null, null, S3Locks.LocalHostKey());

    /// <summary>Lets <see cref="ReaderUser"/> read the bucket of <paramref name="url"/> (GET and LIST) and nothing more, by the bucket's policy.</summary>
    public void GrantRead(string url)
    {
        string bucket = S3Location.Parse(url).Bucket;
        using Amazon.S3.IAmazonS3 client = Client();
        client.PutBucketPolicyAsync(bucket, $$"""
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/{{ReaderUser}}"]},
             "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::{{bucket}}", "arn:aws:s3:::{{bucket}}/*"]}]}
            """).GetAwaiter().GetResult();
    }

    /// <summary>
    /// Gives the bucket of <paramref name="url"/> a quota of <paramref name="maxBytes"/>, as the gateway counts them
    /// (each object rounded up to 4 KiB: <see cref="BucketBytes"/>), and enforces it.
    /// </summary>
    public void SetBucketQuota(string url, long maxBytes)
    {
        string bucket = S3Location.Parse(url).Bucket;
        Admin("quota", "set", "--quota-scope=bucket", $"--bucket={bucket}", FormattableString.Invariant($"--max-size={maxBytes}"));
        Admin("quota", "enable", "--quota-scope=bucket", $"--bucket={bucket}");
    }

    /// <summary>The bytes the bucket of <paramref name="url"/> counts against its quota (<c>size_actual</c>).</summary>
    public long BucketBytes(string url)
    {
        using var stats = System.Text.Json.JsonDocument.Parse(Admin("bucket", "stats", $"--bucket={S3Location.Parse(url).Bucket}"));
        return stats.RootElement.GetProperty("usage").TryGetProperty("rgw.main", out var main) ? main.GetProperty("size_actual").GetInt64() : 0;
    }

    /// <summary>Runs <c>radosgw-admin</c> on the cluster; its output.</summary>
    private string Admin(params string[] arguments)
    {
        var start = new ProcessStartInfo("radosgw-admin") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in new[] { "-c", Path.Combine(_dir, "ceph.conf") }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(1)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"radosgw-admin {string.Join(' ', arguments)} did not finish within a minute.");
        }
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"radosgw-admin {string.Join(' ', arguments)} failed ({process.ExitCode}): {stderr.Result}");
        }
        return stdout.Result;
    }

    /// <summary>A plain S3 client of the gateway, for what a test does behind the store's back.</summary>
    public Amazon.S3.IAmazonS3 Client() => S3Connection.CreateClient(8, name => Environment.TryGetValue(name, out string? value) ? value : null);

    private static RgwGateway Start()
    {
        string script = Path.Combine(RepositoryRoot(), "tests", "s3", "rgw.sh");
        string dir = Path.Combine(Path.GetTempPath(), $"zipllm-rgw-{System.Environment.ProcessId}-{Guid.NewGuid():N}"[..32]);
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in new[] { script, "start", dir, "--owner", System.Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{script} start did not finish within 3 minutes: {stderr.Result}");
        }
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} start failed ({process.ExitCode}); the S3 tests need a Ceph gateway " +
                $"(apt-get install --no-install-recommends ceph-mon ceph-osd radosgw):\n{stdout.Result}\n{stderr.Result}");
        }
        var gateway = new RgwGateway(dir, ReadEnvironment(Path.Combine(dir, "env")), ReadEnvironment(Path.Combine(dir, "env.reader")));
        AppDomain.CurrentDomain.ProcessExit += (_, _) => gateway.Stop(script);
        return gateway;
    }

    private static Dictionary<string, string> ReadEnvironment(string path)
    {
        var environment = File.ReadAllLines(path)
            .Select(line => line.Split('=', 2))
            .Where(parts => parts.Length == 2)
            .ToDictionary(parts => parts[0], parts => parts[1], StringComparer.Ordinal);
        environment["AWS_EC2_METADATA_DISABLED"] = "true";
        return environment;
    }

    private void Stop(string script)
    {
        try
        {
            using Process? stop = Process.Start(new ProcessStartInfo("bash", [script, "stop", _dir]) { UseShellExecute = false });
            stop?.WaitForExit(TimeSpan.FromSeconds(30));
        }
        catch (Exception ex) when (ex is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            // The watchdog stops it once this process is gone.
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ZipLlm.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("The repository root (ZipLlm.sln) is not above the test assembly.");
    }
}
