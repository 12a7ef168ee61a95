using System.Diagnostics;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Time.Testing;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Tests.TestSupport;
using S3Location = ZipLlm.Store.Backends.S3Location;

namespace ZipLlm.Tests.Store.Backends;

/// <summary>
/// What only the S3 store does, against the real gateway: multipart uploads and ranged reads of large objects,
/// and locks as leases in the bucket (shared with other machines: broken when stale, lost when taken over).
/// </summary>
[Trait("Category", "S3")]
public class S3BackendTests
{
    private static readonly TimeSpan ShortLease = TimeSpan.FromSeconds(2);

    // Long enough that a renewal a quarter-lease apart is never seconds late on a loaded two-core machine.
    private static readonly TimeSpan RenewedLease = TimeSpan.FromSeconds(5);

    [Theory]
    [InlineData("s3://bucket", "bucket", "")]
    [InlineData("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b/")]
    [InlineData("S3://bucket/store", "bucket", "store/")]
    public void Parse_Url_GivesBucketAndPrefix(string url, string bucket, string prefix)
    {
        S3Location location = S3Location.Parse(url);
        Assert.Equal(bucket, location.Bucket);
        Assert.Equal(prefix, location.Prefix);
        Assert.Equal(prefix + "objects/" + new string('a', 64), location.ObjectKey(ContentHash.Parse(new string('a', 64))));
    }

    [Theory]
    [InlineData("s3://")]
    [InlineData("s3://ab")]
    [InlineData("s3://Bucket/x")]
    [InlineData("s3://bucket/a/../b")]
    [InlineData("s3://bucket/a//b")]
    [InlineData("/tmp/store")]
    public void Parse_NotABucketUrl_Refused(string url) => Assert.Throws<UsageException>(() => S3Location.Parse(url));

    [Fact]
    public void Config_S3StorageDir_IsKeptAsWrittenNotResolvedAsAPath()
    {
        using var dir = new TempDir();
        dir.Write("config.json", """{"model_dir": "models", "storage_dir": "s3://bucket/team/store", "models_to_process": "m.txt", "base_ft_path": "b.json"}""");
        ZipLlmConfig config = ZipLlmConfig.Load(dir.Combine("config.json"));
        Assert.Equal("s3://bucket/team/store", config.StorageDir);
        Assert.Equal(dir.Combine("models"), config.ModelDir);
    }

    [Fact]
    public void CreateObject_LargerThanAPart_GoesUpInPartsAndReadsBackByRange()
    {
        using S3Backend backend = RgwGateway.Shared.Backend(RgwGateway.NewStoreUrl());
        backend.Create("zipllm-store 1\n"u8);
        var random = new Random(5);
        byte[] bytes = new byte[(3 * S3Backend.DefaultPartSize) + 12345];
        random.NextBytes(bytes);
        ContentHash hash = ContentHash.Of(bytes);
        using (IObjectUpload upload = backend.CreateObject(hash))
        {
            // Odd-sized writes, as the codec's chunks are.
            for (int offset = 0; offset < bytes.Length; offset += 1_000_003)
            {
                upload.Stream.Write(bytes, offset, Math.Min(1_000_003, bytes.Length - offset));
            }
            Assert.Null(backend.StatObject(hash));
            Assert.Equal(bytes.Length, upload.Commit());
        }
        Assert.Empty(Uploads(backend)); // the multipart upload was completed, not left behind

        Assert.Equal(bytes.Length, backend.StatObject(hash)!.Value.Length);
        using IObjectReadSession session = backend.OpenReadSession();
        IObjectContent content = session.Open(hash);
        Assert.Equal(bytes.Length, content.Length);
        foreach (long offset in new long[] { 0, 10, S3ReadSession.HeadSize - 5, S3Backend.DefaultPartSize - 7, bytes.Length - 100 })
        {
            byte[] part = new byte[100];
            content.Read(offset, part);
            Assert.Equal(bytes.AsSpan((int)offset, 100).ToArray(), part);
        }
        Assert.Throws<EndOfStreamException>(() => content.Read(bytes.Length - 10, new byte[11]));
    }

    [Fact]
    public void CreateObject_LargeAndDisposedWithoutCommit_AbortsItsUpload()
    {
        using S3Backend backend = RgwGateway.Shared.Backend(RgwGateway.NewStoreUrl());
        backend.Create("zipllm-store 1\n"u8);
        byte[] bytes = new byte[S3Backend.DefaultPartSize + 1];
        ContentHash hash = ContentHash.Of(bytes);
        using (IObjectUpload upload = backend.CreateObject(hash))
        {
            upload.Stream.Write(bytes);
            upload.Stream.Write(bytes); // a part is under way
            Assert.NotEmpty(Uploads(backend));
        }
        Assert.Empty(Uploads(backend));
        Assert.Null(backend.StatObject(hash));
    }

    [Fact]
    public void Create_PrefixHoldingOtherKeys_IsRefused()
    {
        string url = RgwGateway.NewStoreUrl();
        using S3Backend backend = RgwGateway.Shared.Backend(url);
        backend.Create("zipllm-store 1\n"u8); // makes the bucket
        S3Location location = S3Location.Parse(url);
        PutRaw(location.Bucket, "other/photo.jpg", "x");
        using S3Backend other = RgwGateway.Shared.Backend($"s3://{location.Bucket}/other");
        Assert.Throws<IOException>(() => other.Create("zipllm-store 1\n"u8));
    }

    [Fact]
    public void Lock_LeaseOfADeadProcessOnThisMachine_IsBrokenAtOnce()
    {
        string url = RgwGateway.NewStoreUrl();
        using S3Backend backend = RgwGateway.Shared.Backend(url);
        backend.Create("zipllm-store 1\n"u8);
        int deadPid = DeadProcessId();
        WriteLease(url, "store", "shared.dead", S3Locks.LocalHostKey()!, deadPid);

        var waited = Stopwatch.StartNew();
        using (backend.Lock("store", exclusive: true, TimeSpan.FromSeconds(30), CancellationToken.None))
        {
            Assert.True(waited.Elapsed < S3Backend.DefaultLeaseDuration / 2, $"took {waited.Elapsed}");
        }
        Assert.Empty(LeaseKeys(url, "store"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(20)]
    public async Task Lock_LeaseOfAnotherMachineThatStoppedRenewing_IsBrokenOnlyAfterALeaseAndARequestsLifetimeUnchanged(int requestLifetimeMinutes)
    {
        string url = RgwGateway.NewStoreUrl();
        var time = new FakeTimeProvider();
        TimeSpan requestLifetime = TimeSpan.FromMinutes(requestLifetimeMinutes);
        using S3Backend backend = RgwGateway.Shared.Backend(url, leaseDuration: ShortLease, requestLifetime: requestLifetime, time: time);
        backend.Create("zipllm-store 1\n"u8);
        // A compress on another machine that died: its process cannot be looked up from here, only its lease's age.
        WriteLease(url, "store", "shared.remote", "other-machine/4026531836", Environment.ProcessId);
        DateTimeOffset start = time.GetUtcNow();
        using var waiting = new ManualResetEventSlim();

        Task<IDisposable> taking = Task.Run(() =>
        {
            using (FileLock.BeginScope("gc", _ => waiting.Set()))
            {
                return backend.Lock("store", exclusive: true, TimeSpan.FromHours(1), CancellationToken.None);
            }
        });
        Assert.True(waiting.Wait(TimeSpan.FromSeconds(30)), "the lease was not waited for");
        // The clock moves only when the test moves it, a fortieth of the wait at a time, until the lease is broken.
        TimeSpan step = (ShortLease + requestLifetime) / 40;
        var bound = Stopwatch.StartNew();
        while (!taking.IsCompleted && bound.Elapsed < TimeSpan.FromSeconds(60))
        {
            time.Advance(step);
            await Task.WhenAny(taking, Task.Delay(5));
        }

        using (await taking)
        {
            Assert.True(time.GetUtcNow() - start >= ShortLease + requestLifetime, $"broken after {time.GetUtcNow() - start} on the store's clock");
        }
    }

    [Fact]
    public async Task Lock_GcWaitingForALongCompress_DoesNotKeepNewReadersWaitingAndGetsInAfterThem()
    {
        string url = RgwGateway.NewStoreUrl();
        var time = new FakeTimeProvider();
        // Leases that never go stale in this test: only the waiting is under test, on a clock the test moves.
        TimeSpan lease = TimeSpan.FromHours(1);
        using S3Backend compress = RgwGateway.Shared.Backend(url, leaseDuration: lease, hostKey: "machine-c/1", time: time);
        using S3Backend gc = RgwGateway.Shared.Backend(url, leaseDuration: lease, hostKey: "machine-g/1", time: time);
        using S3Backend list = RgwGateway.Shared.Backend(url, leaseDuration: lease, hostKey: "machine-l/1", time: time);
        compress.Create("zipllm-store 1\n"u8);
        IDisposable compressing = compress.Lock("store", exclusive: false, TimeSpan.FromSeconds(30), CancellationToken.None);

        DateTimeOffset start = time.GetUtcNow();
        Task<IDisposable> collecting = Waiting(gc, exclusive: true, out ManualResetEventSlim gcWaits);
        Assert.True(gcWaits.Wait(TimeSpan.FromSeconds(30)), "gc did not wait for the compress");
        Task<IDisposable> listing = Waiting(list, exclusive: false, out _);

        // Before, the list waited behind the waiting gc as long as the compress ran (72 s in the issue; 30 minutes at most).
        await AdvanceUntil(time, listing, TimeSpan.FromSeconds(60));
        Assert.True(listing.IsCompleted, $"the list still waits after {time.GetUtcNow() - start} on the store's clock");
        Assert.False(collecting.IsCompleted, "gc took the lock while a compress held it");
        (await listing).Dispose();
        compressing.Dispose();
        await AdvanceUntil(time, collecting, TimeSpan.FromMinutes(5));
        (await collecting).Dispose();
    }

    /// <summary>Takes the store lock on another thread; <paramref name="waits"/> is set once it reports that it waits.</summary>
    private static Task<IDisposable> Waiting(S3Backend backend, bool exclusive, out ManualResetEventSlim waits)
    {
        var reported = new ManualResetEventSlim();
        waits = reported;
        return Task.Run(() =>
        {
            using (FileLock.BeginScope(exclusive ? "gc" : "list", _ => reported.Set()))
            {
                return backend.Lock("store", exclusive, TimeSpan.FromHours(2), CancellationToken.None);
            }
        });
    }

    /// <summary>Moves the clock a second at a time until <paramref name="task"/> ends or the clock has moved <paramref name="most"/>.</summary>
    private static async Task AdvanceUntil(FakeTimeProvider time, Task task, TimeSpan most)
    {
        for (TimeSpan moved = TimeSpan.Zero; moved < most && !task.IsCompleted; moved += TimeSpan.FromSeconds(1))
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.WhenAny(task, Task.Delay(20));
        }
        await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void Lock_HeldByAnotherMachineThatRenews_IsNeverBrokenAndIsTakenAfterItsRelease()
    {
        string url = RgwGateway.NewStoreUrl();
        using S3Backend holder = RgwGateway.Shared.Backend(url, leaseDuration: RenewedLease, hostKey: "machine-a/1");
        using S3Backend waiter = RgwGateway.Shared.Backend(url, leaseDuration: RenewedLease, hostKey: "machine-b/1");
        holder.Create("zipllm-store 1\n"u8);
        IDisposable held = holder.Lock("store", exclusive: false, TimeSpan.FromSeconds(5), CancellationToken.None);
        // Two leases' time: renewals keep it live all along.
        Assert.Throws<TimeoutException>(() => waiter.Lock("store", exclusive: true, RenewedLease * 2, CancellationToken.None));
        Assert.True(holder.CreateManifest("o/m.json", "{}"u8)); // its lease is still trusted
        held.Dispose();
        using (waiter.Lock("store", exclusive: true, TimeSpan.FromSeconds(10), CancellationToken.None))
        {
            Assert.Throws<TimeoutException>(() => holder.Lock("store", exclusive: false, TimeSpan.FromMilliseconds(500), CancellationToken.None));
        }
    }

    [Fact]
    public void Lock_ReadOnlyCredentials_SharedIsHeldWithoutALeaseAndSaidSoOnce_ExclusiveIsRefused()
    {
        string url = RgwGateway.NewStoreUrl();
        using S3Backend owner = RgwGateway.Shared.Backend(url);
        owner.Create("zipllm-store 1\n"u8);
        ContentHash hash = BackendContractTests.Put(owner, [1, 2, 3]);
        RgwGateway.Shared.GrantRead(url);
        using S3Backend reader = RgwGateway.Shared.ReaderBackend(url);
        var notices = new List<string>();

        using (FileLock.BeginScope("restore", onWait: null, notices.Add))
        {
            using (reader.Lock("store", exclusive: false, TimeSpan.FromSeconds(5), CancellationToken.None))
            using (reader.Lock("store", exclusive: false, TimeSpan.FromSeconds(5), CancellationToken.None))
            {
                Assert.Equal(3, reader.StatObject(hash)!.Value.Length);
                Assert.Equal(hash, Assert.Single(reader.ListObjects()).Hash);
            }
            var refused = Assert.ThrowsAny<IOException>(() => reader.Lock("store", exclusive: true, TimeSpan.FromSeconds(5), CancellationToken.None));
            Assert.Contains("AccessDenied", refused.Message);
            Assert.Contains("these credentials may not do this", refused.Message);
        }

        string notice = Assert.Single(notices);
        Assert.Contains("without a lease", notice);
        Assert.Contains(url, notice);
    }

    [Fact]
    public void Lock_LeaseTakenOverByAnother_HolderWritesAndDeletesNothingMore()
    {
        string url = RgwGateway.NewStoreUrl();
        using S3Backend backend = RgwGateway.Shared.Backend(url, leaseDuration: ShortLease);
        backend.Create("zipllm-store 1\n"u8);
        ContentHash hash = BackendContractTests.Put(backend, [1, 2, 3]);
        using IDisposable held = backend.Lock("store", exclusive: true, TimeSpan.FromSeconds(5), CancellationToken.None);
        // Another machine broke the lease (it took this process for dead) and holds the lock now.
        WriteLease(url, "store", "exclusive", "other-machine/1", 1);

        // The next renewal fails its If-Match; at the latest the lease's trust runs out.
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < ShortLease * 2)
        {
            try
            {
                backend.DeleteObject(ContentHash.Of([9]));
                Thread.Sleep(50);
            }
            catch (IOException ex)
            {
                Assert.Contains("Lost the store lock", ex.Message);
                break;
            }
        }
        Assert.Throws<StoreLockLostException>(() => backend.CreateManifest("o/m.json", "{}"u8));
        Assert.Throws<StoreLockLostException>(() => backend.DeleteObject(hash));
        Assert.Null(backend.ReadManifest("o/m.json"));
        Assert.NotNull(backend.StatObject(hash));
        held.Dispose();
        // Its release leaves the other machine's lease alone.
        Assert.Equal(["exclusive"], LeaseKeys(url, "store"));
    }

    [Fact]
    public void ReadSession_ObjectDeletedAfterOpen_IsDamageNamingIt()
    {
        using S3Backend backend = RgwGateway.Shared.Backend(RgwGateway.NewStoreUrl());
        backend.Create("zipllm-store 1\n"u8);
        byte[] bytes = new byte[S3ReadSession.HeadSize * 2];
        ContentHash hash = BackendContractTests.Put(backend, bytes);
        using IObjectReadSession session = backend.OpenReadSession();
        IObjectContent content = session.Open(hash);
        backend.DeleteObject(hash);
        var ex = Assert.Throws<StoreDamageException>(() => content.Read(S3ReadSession.HeadSize + 1, new byte[10]));
        Assert.Equal(hash, ex.Object);
    }

    private static int DeadProcessId()
    {
        using Process process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }

    private static void PutRaw(string bucket, string key, string text)
    {
        using IAmazonS3 client = RgwGateway.Shared.Client();
        client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, ContentBody = text }).GetAwaiter().GetResult();
    }

    /// <summary>Writes a lease as another holder would have (its record names its machine and process).</summary>
    private static void WriteLease(string url, string lockName, string leaseName, string hostKey, int pid)
    {
        S3Location location = S3Location.Parse(url);
        using IAmazonS3 client = RgwGateway.Shared.Client();
        byte[] body = S3Locks.LeaseRecord.Format(Guid.NewGuid().ToString("N"), leaseName == "exclusive", 1, hostKey, DateTimeOffset.UtcNow.AddMinutes(-1), "compress");
        string text = System.Text.Encoding.UTF8.GetString(body).Replace($" {Environment.ProcessId} ", $" {pid} ", StringComparison.Ordinal);
        client.PutObjectAsync(new PutObjectRequest { BucketName = location.Bucket, Key = location.LockPrefix(lockName) + leaseName, ContentBody = text })
            .GetAwaiter().GetResult();
    }

    private static List<string> LeaseKeys(string url, string lockName)
    {
        S3Location location = S3Location.Parse(url);
        using IAmazonS3 client = RgwGateway.Shared.Client();
        ListObjectsV2Response listing = client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = location.Bucket, Prefix = location.LockPrefix(lockName) })
            .GetAwaiter().GetResult();
        return (listing.S3Objects ?? []).Select(o => o.Key[location.LockPrefix(lockName).Length..]).ToList();
    }

    private static List<MultipartUpload> Uploads(S3Backend backend)
    {
        using IAmazonS3 client = RgwGateway.Shared.Client();
        return client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = backend.Store.Bucket, Prefix = backend.Store.Prefix })
            .GetAwaiter().GetResult().MultipartUploads ?? [];
    }
}
