namespace ZipLlm.Safetensors;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The tensor's key in the header.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions; empty for a scalar.</param>
/// <param name="Begin">Start of the tensor's bytes, relative to the end of the header.</param>
/// <param name="End">End (exclusive) of the tensor's bytes, relative to the end of the header.</param>
internal sealed record TensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
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

    /// <summary>Value equality, comparing <see cref="Shape"/> element by element (a record alone compares the array reference).</summary>
    public bool Equals(TensorInfo? other) =>
        other is not null && Name == other.Name && Begin == other.Begin && End == other.End && SameLayoutAs(other);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Name);
        hash.Add(DType);
        hash.Add(Begin);
        hash.Add(End);
        foreach (long d in Shape)
        {
            hash.Add(d);
        }
        return hash.ToHashCode();
    }

    /// <summary>Whether two entries describe tensors of the same dtype and shape.</summary>
    public bool SameLayoutAs(TensorInfo other) => DType == other.DType && Shape.AsSpan().SequenceEqual(other.Shape);
}
