using ZipLlm.Config;
using ZipLlm.Cli;
using ZipLlm.Domain;

namespace ZipLlm.Tests.Cli;

/// <summary>Only the failures users can act on map to exit codes 2-6; anything else is a bug (exit 1).</summary>
public class ErrorMappingTests
{
    public static TheoryData<Exception, int> Mapped => new()
    {
        { new ModelNotFoundException("org/name", "Model org/name is not in the store"), ExitCodes.UsageError },
        { new UsageException("--threads must be from 1 to 1024, not 0."), ExitCodes.UsageError },
        { new InvalidDataException("malformed"), ExitCodes.InvalidInput },
        { new EndOfStreamException("truncated"), ExitCodes.InvalidInput },
        { new NotSupportedException("newer format"), ExitCodes.InvalidInput },
        { new IOException("disk full"), ExitCodes.IoError },
        { new UnauthorizedAccessException("denied"), ExitCodes.IoError },
        { new StoreDamageException(null, null, null, "damaged"), ExitCodes.VerificationFailed },
    };

    [Theory]
    [MemberData(nameof(Mapped))]
    public void TryMap_FailureUsersActOn_GivesItsExitCode(Exception ex, int expected)
    {
        Assert.True(ErrorMapping.TryMap(ex, out int exitCode));
        Assert.Equal(expected, exitCode);
    }

    [Fact]
    public void TryMap_ArgumentErrorOfTheEngine_IsNotMapped()
    {
        // A slice out of range in the engine is a bug, not the user's mistake.
        ArgumentOutOfRangeException ex = Assert.Throws<ArgumentOutOfRangeException>(() => new byte[4].AsSpan(2, 5).ToArray());

        Assert.False(ErrorMapping.TryMap(ex, out _));
    }

    [Fact]
    public void TryMap_MissingKeyOtherThanAModel_IsNotMapped()
    {
        // An engine bug that misses a dictionary key must not be answered with "did you mean ...?" and exit 2.
        var bug = new Dictionary<string, int>();
        KeyNotFoundException ex = Assert.Throws<KeyNotFoundException>(() => bug["missing"]);

        Assert.False(ErrorMapping.TryMap(ex, out _));
    }
}
