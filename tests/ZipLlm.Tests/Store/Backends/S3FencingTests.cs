using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store.Backends;

/// <summary>
/// Requests of a lease holder that the network delays past its lease (issue 24, item 1), against the real gateway
/// through a proxy that holds them: they must never land after another machine has broken the lease and acted on it.
/// </summary>
public class S3FencingTests
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(2);

    // The request lifetime these tests give the network: the proxy holds a request for less than this.
    private static readonly TimeSpan RequestLifetime = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(6);

    [Fact]
    public async Task DeleteHeldInTheNetworkPastTheLease_AnotherMachineReusingTheObject_NeverLosesIt()
    {
        string url = RgwGateway.NewStoreUrl();
        Uri gateway = new(RgwGateway.Shared.Environment[S3Connection.EndpointS3Variable]);
        using var proxy = new HoldingProxy(gateway);
        // A remove or gc on machine A reaches the gateway through the stalling network; a compress on machine B does not.
        using S3Backend a = RgwGateway.Shared.Backend(url, leaseDuration: Lease, hostKey: "machine-a/1", requestLifetime: RequestLifetime, endpoint: proxy.Endpoint);
        using S3Backend b = RgwGateway.Shared.Backend(url, leaseDuration: Lease, hostKey: "machine-b/1", requestLifetime: RequestLifetime);
        ModelStore.Open(b, create: true);
        byte[] bytes = Enumerable.Range(0, 5000).Select(i => (byte)(i * 13)).ToArray();
        ContentHash hash = ContentHash.Of(bytes);
        Write(b, hash, bytes);

        S3Location location = S3Location.Parse(url);
        proxy.HoldFrom($"DELETE /{location.Bucket}/{location.ObjectKey(hash)}");
        // A's DELETE, and every request after it (its renewals too), are held: to B, A's lease goes stale.
        // As the process would, A lets its lock go once the DELETE has failed (or ended). On a loaded machine, taking the
        // lock can outlast the part of the 2 s lease A trusts, and A then refuses to send the DELETE at all (right, but
        // not what this test is about): A takes the lock again, a few times at most.
        Task delete = Task.CompletedTask;
        for (int attempt = 0; attempt < 5 && !proxy.Held.IsCompleted; attempt++)
        {
            IDisposable exclusive = a.Lock("store", exclusive: true, TimeSpan.FromSeconds(30), CancellationToken.None);
            delete = Task.Run(() =>
            {
                try
                {
                    a.DeleteObject(hash);
                }
                finally
                {
                    exclusive.Dispose();
                }
            });
            await Task.WhenAny(proxy.Held, delete.ContinueWith(_ => { }, TaskScheduler.Default), Task.Delay(TimeSpan.FromSeconds(30)));
        }
        Assert.True(proxy.Held.IsCompleted, "the DELETE never reached the proxy");
        using var release = new Timer(_ => proxy.Release(), null, Hold, Timeout.InfiniteTimeSpan);

        // B's compress: the store lock (breaking A's stale lease), then the object, reused when found, else written again.
        bool reused;
        using (b.Lock("store", exclusive: false, TimeSpan.FromSeconds(60), CancellationToken.None))
        {
            reused = b.StatObject(hash) is not null;
            if (!reused)
            {
                Write(b, hash, bytes);
            }
            Assert.True(b.CreateManifest("o/m.json", "{}"u8));

            // The held DELETE lands, late.
            Assert.True(await Task.WhenAny(proxy.Answered, Task.Delay(TimeSpan.FromSeconds(60))) == proxy.Answered, "the held DELETE was never answered");
            Assert.True(b.StatObject(hash) is not null,
                $"the object B {(reused ? "reused" : "wrote again")} was deleted by A's DELETE, which landed after B broke A's lease");
        }
        // A gave the DELETE up at its lease's end, instead of waiting minutes for it with the SDK's retries.
        await Assert.ThrowsAsync<IOException>(() => delete.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    private static void Write(IStoreBackend backend, ContentHash hash, byte[] bytes)
    {
        using IObjectUpload upload = backend.CreateObject(hash);
        upload.Stream.Write(bytes);
        upload.Commit();
    }
}
