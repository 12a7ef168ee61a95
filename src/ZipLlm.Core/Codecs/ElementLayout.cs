using ZipLlm.Safetensors;

using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Codecs;

/// <summary>How a tensor's bytes are grouped into streams before zstd.</summary>
internal enum ElementLayout : byte
{
    /// <summary>One stream: the bytes as they are.</summary>
    Bytes = 0,

    /// <summary>16-bit words (BF16; F16 too before format version 3): an exponent stream and a sign+mantissa stream.</summary>
    Word16 = 1,

    /// <summary>32-bit singles (F32): exponent, sign+high mantissa, and two low mantissa byte streams.</summary>
    Word32 = 2,

    /// <summary>
    /// IEEE half words (F16): split as <see cref="Word16"/>; the layout says where the exponent is (bits 14..10, not
    /// 14..7), which the context of an ordered difference needs. Since format version 3; older F16 tensors are Word16.
    /// </summary>
    Half = 3,
}

/// <summary>Facts about each <see cref="ElementLayout"/>.</summary>
internal static class ElementLayouts
{
    /// <summary>The grouping that suits <paramref name="dtype"/>: floating types are split by field, the rest kept whole.</summary>
    public static ElementLayout ForDType(DType dtype) => dtype switch
    {
        DType.BF16 => ElementLayout.Word16,
        DType.F16 => ElementLayout.Half,
        DType.F32 => ElementLayout.Word32,
        _ => ElementLayout.Bytes,
    };

    /// <summary>Bytes per word; a chunk's trailing bytes that do not fill a word go to the last stream as they are.</summary>
    public static int WordSize(this ElementLayout layout) => layout switch
    {
        ElementLayout.Bytes => 1,
        ElementLayout.Word16 or ElementLayout.Half => 2,
        ElementLayout.Word32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(layout), layout, "Unknown layout."),
    };

    /// <summary>Number of streams a chunk is split into.</summary>
    public static int StreamCount(this ElementLayout layout) => layout switch
    {
        ElementLayout.Bytes => 1,
        ElementLayout.Word16 or ElementLayout.Half => 2,
        ElementLayout.Word32 => F32Split.StreamCount,
        _ => throw new ArgumentOutOfRangeException(nameof(layout), layout, "Unknown layout."),
    };

    /// <summary>Whether <paramref name="value"/> names a layout of format <paramref name="version"/>.</summary>
    public static bool IsDefined(byte value, byte version = EncodedTensorFormat.Version) =>
        value <= (byte)(version >= 3 ? ElementLayout.Half : ElementLayout.Word32);

    /// <summary>Whether the layout's words are 16-bit floats (BF16 or F16), which ordered differences and base conversions apply to.</summary>
    public static bool IsHalfWord(this ElementLayout layout) => layout is ElementLayout.Word16 or ElementLayout.Half;

    /// <summary>Length of stream <paramref name="stream"/> for a chunk of <paramref name="chunkLength"/> bytes.</summary>
    public static int StreamLength(this ElementLayout layout, int chunkLength, int stream)
    {
        int wordSize = layout.WordSize();
        int words = chunkLength / wordSize;
        return stream == layout.StreamCount() - 1 ? words + chunkLength % wordSize : words;
    }
}
