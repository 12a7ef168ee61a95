namespace ZipLlm.Safetensors;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The tensor's key in the header.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions; empty for a scalar.</param>
/// <param name="Begin">Start of the tensor's bytes, relative to the end of the header.</param>
/// <param name="End">End (exclusive) of the tensor's bytes, relative to the end of the header.</param>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Byte length of the tensor's data.</summary>
    public long Length => End - Begin;

    /// <summary>Number of elements (1 for a scalar, 0 when any dimension is 0).</summary>
    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (long d in Shape)
            {
                count = checked(count * d);
            }
            return count;
        }
    }

    /// <summary>Whether two entries describe tensors of the same dtype and shape.</summary>
    public bool SameLayoutAs(TensorInfo other) => DType == other.DType && Shape.AsSpan().SequenceEqual(other.Shape);
}
