using System.Net;
using ZipLlm.Store.Backends;

namespace ZipLlm.Tests.Store.Backends;

public class S3RequestExceptionTests
{
    [Fact]
    public void Message_QuotaExceeded_SaysTheQuotaIsFullNotThatTheCredentialsMayNot()
    {
        var ex = new S3RequestException("PUT team/locks/store/exclusive", HttpStatusCode.Forbidden, "QuotaExceeded", "", null);

        Assert.Equal("S3 PUT team/locks/store/exclusive: 403 QuotaExceeded: the bucket's or the user's quota is full: remove models or run gc to free space", ex.Message);
        Assert.True(ex.IsQuotaExceeded);
        Assert.False(ex.IsAccessDenied);
    }

    [Fact]
    public void Message_AccessDenied_SaysTheCredentialsMayNot()
    {
        var ex = new S3RequestException("PUT team/FORMAT", HttpStatusCode.Forbidden, "AccessDenied", "Access Denied", null);

        Assert.Equal("S3 PUT team/FORMAT: 403 AccessDenied: Access Denied (these credentials may not do this)", ex.Message);
        Assert.True(ex.IsAccessDenied);
        Assert.False(ex.IsQuotaExceeded);
    }
}
