using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Hub;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Hub;

public class HubTransportHandlerTests
{
    private const string Token = "secret-token";

    private static HttpClient Client(Uri hub, string? token = Token)
    {
        HubClientOptions options = HubTestOptions.Fast(hub, token);
        var inner = new SocketsHttpHandler { AllowAutoRedirect = false };
        return new HttpClient(new HubTransportHandler(options, new HubRetryPolicy(options, NullLogger.Instance), inner));
    }

    private static HttpRequestMessage Get(Uri url, HubOperation? operation = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (operation is not null)
        {
            request.Options.Set(HubTransportHandler.OperationKey, operation);
        }
        return request;
    }

    private static FakeResponse Redirect(Uri to) =>
        new(302, [], new Dictionary<string, string> { ["Location"] = to.AbsoluteUri });

    [Fact]
    public async Task Send_RedirectToOtherHostAndBack_TokenOnlyOnHubAndRangeKept()
    {
        Uri? hubEndpoint = null;
        await using var cdn = new FakeHttpServer(r => r.Path == "/signed" ? Redirect(new Uri(hubEndpoint!, "final")) : FakeResponse.Text(404, "no"));
        await using var hub = new FakeHttpServer(r => r.Path == "/start" ? Redirect(new Uri(cdn.Endpoint, "signed")) : FakeResponse.Text(200, "ok"));
        hubEndpoint = hub.Endpoint;
        using HttpClient client = Client(hub.Endpoint);
        using HttpRequestMessage request = Get(new Uri(hub.Endpoint, "start"), new HubOperation("org/m: f"));
        request.Headers.Range = new RangeHeaderValue(5, null);

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        FakeRequest signed = Assert.Single(cdn.Requests);
        Assert.Null(signed.Header("Authorization"));
        Assert.Equal("bytes=5-", signed.Header("Range"));
        Assert.Equal(["/start", "/final"], hub.Requests.Select(r => r.Path));
        Assert.All(hub.Requests, r => Assert.Equal($"Bearer {Token}", r.Header("Authorization")));
        Assert.All(hub.Requests, r => Assert.Equal("bytes=5-", r.Header("Range")));
    }

    [Fact]
    public async Task Send_CallerSetsAuthorizationAndRedirectLeavesHub_NotForwarded()
    {
        await using var cdn = new FakeHttpServer(_ => FakeResponse.Text(200, "ok"));
        await using var hub = new FakeHttpServer(_ => Redirect(new Uri(cdn.Endpoint, "signed")));
        using HttpClient client = Client(hub.Endpoint, token: null);
        using HttpRequestMessage request = Get(new Uri(hub.Endpoint, "start"), new HubOperation("org/m"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "stray");

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(Assert.Single(cdn.Requests).Header("Authorization"));
        Assert.Null(Assert.Single(hub.Requests).Header("Authorization"));
    }

    [Theory]
    [InlineData(408)]
    [InlineData(429)]
    [InlineData(500)]
    [InlineData(503)]
    public async Task Send_TransientThenOk_RetriesOnce(int status)
    {
        int served = 0;
        await using var hub = new FakeHttpServer(_ => Interlocked.Increment(ref served) == 1
            ? FakeResponse.Text(status, "busy", new Dictionary<string, string> { ["Retry-After"] = "0" })
            : FakeResponse.Text(200, "ok"));
        using HttpClient client = Client(hub.Endpoint);
        var operation = new HubOperation("org/m: f");
        using HttpRequestMessage request = Get(new Uri(hub.Endpoint, "x"), operation);

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, hub.Requests.Count);
        Assert.Equal(2, operation.Attempt);
    }

    [Fact]
    public async Task Send_AlwaysUnavailable_GivesUpAfterMaxAttemptsAsNetworkError()
    {
        await using var hub = new FakeHttpServer(_ => FakeResponse.Text(503, "down"));
        using HttpClient client = Client(hub.Endpoint);
        using HttpRequestMessage request = Get(new Uri(hub.Endpoint, "x"), new HubOperation("org/m", "listing files"));

        var ex = await Assert.ThrowsAsync<HubException>(() => client.SendAsync(request));

        Assert.Equal(HubErrorKind.Network, ex.Kind);
        Assert.Equal("org/m: listing files: the hub answered 503 Service Unavailable; gave up after 3 attempts.", ex.Message);
        Assert.Equal(3, hub.Requests.Count);
    }

    [Theory]
    [InlineData(401)]
    [InlineData(404)]
    [InlineData(416)]
    public async Task Send_NonTransientError_ReturnedWithoutRetry(int status)
    {
        await using var hub = new FakeHttpServer(_ => FakeResponse.Text(status, "no"));
        using HttpClient client = Client(hub.Endpoint);
        using HttpRequestMessage request = Get(new Uri(hub.Endpoint, "x"), new HubOperation("org/m"));

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Single(hub.Requests);
    }

    [Fact]
    public async Task Send_RedirectLoop_ThrowsProtocolAfterMaxRedirects()
    {
        Uri? self = null;
        await using var hub = new FakeHttpServer(_ => Redirect(new Uri(self!, "again")));
        self = hub.Endpoint;
        using HttpClient client = Client(hub.Endpoint);
        using HttpRequestMessage request = Get(new Uri(hub.Endpoint, "x"), new HubOperation("org/m: f"));

        var ex = await Assert.ThrowsAsync<HubException>(() => client.SendAsync(request));

        Assert.Equal(HubErrorKind.Protocol, ex.Kind);
        Assert.Contains("org/m: f", ex.Message);
        Assert.Equal(HubTransportHandler.MaxRedirects + 1, hub.Requests.Count);
    }

    [Fact]
    public async Task Send_WithoutOperation_PassesThroughUntouched()
    {
        await using var other = new FakeHttpServer(_ => FakeResponse.Text(200, "ok"));
        await using var hub = new FakeHttpServer(r => r.Path == "/busy" ? FakeResponse.Text(503, "down") : Redirect(other.Endpoint));
        using HttpClient client = Client(hub.Endpoint);

        using HttpResponseMessage busy = await client.SendAsync(Get(new Uri(hub.Endpoint, "busy")));
        using HttpResponseMessage moved = await client.SendAsync(Get(new Uri(hub.Endpoint, "moved")));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, busy.StatusCode);
        Assert.Equal(HttpStatusCode.Found, moved.StatusCode);
        Assert.Equal(2, hub.Requests.Count);
        Assert.Empty(other.Requests);
        Assert.All(hub.Requests, r => Assert.Null(r.Header("Authorization")));
    }

    [Fact]
    public async Task RetryPolicy_RequestAndBodyFailures_ShareOneBoundedBudget()
    {
        int served = 0;
        await using var hub = new FakeHttpServer(_ => Interlocked.Increment(ref served) == 1 ? FakeResponse.Text(503, "down") : FakeResponse.Text(200, "ok"));
        HubClientOptions options = HubTestOptions.Fast(hub.Endpoint);
        var retry = new HubRetryPolicy(options, NullLogger.Instance);
        using var client = new HttpClient(new HubTransportHandler(options, retry, new SocketsHttpHandler { AllowAutoRedirect = false }));
        var operation = new HubOperation("org/m: f");

        // A 503 (retried by the transport), then two bodies that fail (retried by the caller): three attempts in all.
        var ex = await Assert.ThrowsAsync<HubException>(() => retry.RunAsync<bool>(operation, async ct =>
        {
            using HttpRequestMessage request = Get(new Uri(hub.Endpoint, "x"), operation);
            using HttpResponseMessage response = await client.SendAsync(request, ct);
            throw new HubTransientException("the transfer ended early", null);
        }, CancellationToken.None));

        Assert.Equal(HubErrorKind.Network, ex.Kind);
        Assert.Contains("gave up after 3 attempts", ex.Message);
        Assert.Equal(3, hub.Requests.Count);
    }
}
