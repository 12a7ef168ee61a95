using System.Globalization;

namespace ZipLlm.Serve;

/// <summary>What a request's <c>Range</c> header asks of a file of a known size (RFC 9110 section 14).</summary>
public enum ByteRangeKind
{
    /// <summary>No range, or one to ignore (malformed, another unit, several ranges): the whole file, 200.</summary>
    Whole,

    /// <summary>One satisfiable range: 206 with <c>Content-Range</c>.</summary>
    Partial,

    /// <summary>A range that starts past the end (or asks for a suffix of none): 416 with <c>Content-Range: bytes */SIZE</c>.</summary>
    Unsatisfiable,
}

/// <summary>The answer to a <c>Range</c> header: which bytes of the file to send, and with which status.</summary>
/// <param name="Kind">Whole, partial or unsatisfiable.</param>
/// <param name="Start">First byte sent.</param>
/// <param name="Length">Bytes sent (0 when unsatisfiable).</param>
public readonly record struct ByteRange(ByteRangeKind Kind, long Start, long Length)
{
    private const string Unit = "bytes=";

    /// <summary>Last byte sent (<see cref="Start"/> + <see cref="Length"/> - 1).</summary>
    public long End => Start + Length - 1;

    /// <summary>
    /// Reads <paramref name="header"/> for a file of <paramref name="size"/> bytes. One range only: <c>a-b</c>,
    /// <c>a-</c> (open-ended) and <c>-n</c> (the last n bytes). Several ranges are answered with the whole file, as
    /// RFC 9110 allows, never with a multipart body; a range that is not valid syntax (<c>bytes=5-2</c>) is ignored.
    /// A first byte at or past the end, or a suffix of 0 bytes, is unsatisfiable.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is negative.</exception>
    public static ByteRange Parse(string? header, long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var whole = new ByteRange(ByteRangeKind.Whole, 0, size);
        if (string.IsNullOrEmpty(header) || !header.StartsWith(Unit, StringComparison.OrdinalIgnoreCase))
        {
            return whole;
        }
        ReadOnlySpan<char> spec = header.AsSpan(Unit.Length).Trim();
        if (spec.Contains(',') || spec.IndexOf('-') is not (>= 0 and var dash))
        {
            return whole;
        }
        ReadOnlySpan<char> first = spec[..dash].Trim(), last = spec[(dash + 1)..].Trim();
        if (first.IsEmpty)
        {
            // A suffix: the last n bytes.
            if (!TryDigits(last, out long suffix, out bool suffixHuge))
            {
                return whole;
            }
            if (suffix == 0 && !suffixHuge || size == 0)
            {
                return new ByteRange(ByteRangeKind.Unsatisfiable, 0, 0);
            }
            long count = suffixHuge ? size : Math.Min(suffix, size);
            return new ByteRange(ByteRangeKind.Partial, size - count, count);
        }
        if (!TryDigits(first, out long start, out bool startHuge))
        {
            return whole;
        }
        long end = long.MaxValue;
        if (!last.IsEmpty)
        {
            if (!TryDigits(last, out end, out bool endHuge))
            {
                return whole;
            }
            if (endHuge)
            {
                end = long.MaxValue;
            }
            if (!startHuge && end < start)
            {
                return whole;
            }
        }
        if (startHuge || start >= size)
        {
            return new ByteRange(ByteRangeKind.Unsatisfiable, 0, 0);
        }
        end = Math.Min(end, size - 1);
        return new ByteRange(ByteRangeKind.Partial, start, end - start + 1);
    }

    /// <summary>ASCII digits only (no sign, no spaces inside); more than a long holds is <paramref name="huge"/>.</summary>
    private static bool TryDigits(ReadOnlySpan<char> text, out long value, out bool huge)
    {
        value = 0;
        huge = false;
        if (text.IsEmpty || text.ContainsAnyExcept("0123456789"))
        {
            return false;
        }
        huge = !long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        return true;
    }
}
