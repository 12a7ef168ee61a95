using System.Text.RegularExpressions;

namespace ZipLlm.Serve.Mirror;

/// <summary>
/// A store holds one manifest per model id, so a model's second and later upstream revisions are stored under a
/// revision id of their own, <c>ORG/NAME.rev-COMMIT12</c> (each delta-coded against the revision before, which lineage
/// finds): the mirror hides these ids from listings and answers them as revisions of <c>ORG/NAME</c>, addressable by
/// commit, the newest stored being <c>main</c>.
/// </summary>
internal static partial class MirrorRevisions
{
    private const string Marker = ".rev-";
    private const int CommitDigits = 12;

    /// <summary>The id revision <paramref name="commit"/> of <paramref name="modelId"/> is stored under when the model is stored already.</summary>
    public static string IdOf(string modelId, string commit) => $"{modelId}{Marker}{commit[..CommitDigits]}";

    /// <summary>Whether <paramref name="storedId"/> is a revision id.</summary>
    public static bool IsRevisionId(string storedId) => RevisionId().IsMatch(storedId);

    /// <summary>Whether <paramref name="storedId"/> holds a revision of <paramref name="modelId"/>: the model's own id, or one of its revision ids.</summary>
    public static bool IsRevisionOf(string storedId, string modelId) =>
        string.Equals(storedId, modelId, StringComparison.Ordinal)
        || storedId.Length == modelId.Length + Marker.Length + CommitDigits && storedId.StartsWith(modelId + Marker, StringComparison.Ordinal) && IsRevisionId(storedId);

    [GeneratedRegex(@"\.rev-[0-9a-f]{12}\z")]
    private static partial Regex RevisionId();
}
