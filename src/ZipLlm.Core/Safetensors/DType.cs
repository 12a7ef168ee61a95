namespace ZipLlm.Safetensors;

/// <summary>The element types a safetensors header may name.</summary>
internal enum DType
{
    /// <summary>Boolean, one byte per element.</summary>
    BOOL,
    /// <summary>4-bit float (E2M1), two elements per byte.</summary>
    F4,
    /// <summary>6-bit float (E2M3), four elements per three bytes.</summary>
    F6_E2M3,
    /// <summary>6-bit float (E3M2), four elements per three bytes.</summary>
    F6_E3M2,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>8-bit float, 5 exponent and 2 mantissa bits.</summary>
    F8_E5M2,
    /// <summary>8-bit float, 4 exponent and 3 mantissa bits.</summary>
    F8_E4M3,
    /// <summary>8-bit exponent-only scale (MX formats).</summary>
    F8_E8M0,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Unsigned 16-bit integer.</summary>
    U16,
    /// <summary>IEEE half precision.</summary>
    F16,
    /// <summary>bfloat16: the top half of an IEEE single.</summary>
    BF16,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Unsigned 32-bit integer.</summary>
    U32,
    /// <summary>IEEE single precision.</summary>
    F32,
    /// <summary>IEEE double precision.</summary>
    F64,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Unsigned 64-bit integer.</summary>
    U64,
    /// <summary>Complex of two singles.</summary>
    C64,
}

/// <summary>Facts about each <see cref="DType"/>: its name in a header and its width.</summary>
internal static class DTypes
{
    /// <summary>Width of one element in bits.</summary>
    public static int BitSize(this DType dtype) => dtype switch
    {
        DType.F4 => 4,
        DType.F6_E2M3 or DType.F6_E3M2 => 6,
        DType.BOOL or DType.U8 or DType.I8 or DType.F8_E5M2 or DType.F8_E4M3 or DType.F8_E8M0 => 8,
        DType.I16 or DType.U16 or DType.F16 or DType.BF16 => 16,
        DType.I32 or DType.U32 or DType.F32 => 32,
        DType.F64 or DType.I64 or DType.U64 or DType.C64 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>Parses a header's dtype string (exact, case-sensitive, as the format defines it).</summary>
    /// <returns><see langword="false"/> when the name is not a known dtype.</returns>
    public static bool TryParse(ReadOnlySpan<byte> utf8Name, out DType dtype)
    {
        foreach (DType candidate in Enum.GetValues<DType>())
        {
            if (utf8Name.SequenceEqual(NameUtf8(candidate)))
            {
                dtype = candidate;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    /// <summary>The dtype's name as a header writes it.</summary>
    public static string Name(this DType dtype) => dtype.ToString();

    private static readonly byte[][] s_names =
        Enum.GetValues<DType>().Select(d => System.Text.Encoding.ASCII.GetBytes(d.ToString())).ToArray();

    private static ReadOnlySpan<byte> NameUtf8(DType dtype) => s_names[(int)dtype];

    /// <summary>
    /// Number of bytes <paramref name="elementCount"/> elements occupy, or -1 when a sub-byte
    /// dtype would end mid-byte (the format forbids it).
    /// </summary>
    /// <exception cref="OverflowException">The byte count does not fit in a <see cref="long"/>.</exception>
    public static long ByteCount(this DType dtype, long elementCount)
    {
        long bits = checked(elementCount * dtype.BitSize());
        return bits % 8 == 0 ? bits / 8 : -1;
    }
}
