namespace ZipLlm.Tools.BitxFileTool;

/// <summary>What a BitX compression or decompression did.</summary>
/// <param name="Mode">How the finetune was paired with the base.</param>
/// <param name="PairedTensors">Tensors XOR-ed with a base tensor (0 in raw mode).</param>
/// <param name="OriginalLength">Bytes of the finetune file.</param>
/// <param name="ExponentLength">Bytes of the exponent-stream file.</param>
/// <param name="SignMantissaLength">Bytes of the sign+mantissa-stream file.</param>
/// <param name="Elapsed">Wall time of the whole operation.</param>
internal sealed record BitxResult(BitxMode Mode, int PairedTensors, long OriginalLength, long ExponentLength, long SignMantissaLength, TimeSpan Elapsed)
{
    /// <summary>Bytes of both compressed files.</summary>
    public long CompressedLength => ExponentLength + SignMantissaLength;

    /// <summary>Original bytes per compressed byte (0 when both are empty).</summary>
    public double Ratio => CompressedLength == 0 ? 0 : (double)OriginalLength / CompressedLength;

    /// <summary>Original bytes processed per second, in MB (10^6 bytes).</summary>
    public double MegabytesPerSecond => Elapsed <= TimeSpan.Zero ? 0 : OriginalLength / Elapsed.TotalSeconds / 1e6;
}
