using ZipLlm.Domain;

namespace ZipLlm;

/// <summary>
/// The store does not hold a model that was asked for by id: the caller named the wrong one (or another process
/// removed it meanwhile). A <see cref="KeyNotFoundException"/>, so a caller that catches those still does; the
/// <c>zipllm</c> command answers it, and only it, with the closest stored ids.
/// </summary>
public sealed class ModelNotFoundException : KeyNotFoundException
{
    /// <summary>Creates the exception for <paramref name="modelId"/>, with <paramref name="message"/> saying where it was looked for.</summary>
    public ModelNotFoundException(string modelId, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        ModelId = modelId;
    }

    internal ModelNotFoundException(ModelId modelId, string message, Exception? innerException = null)
        : this(modelId.ToString(), message, innerException)
    {
    }

    /// <summary>The model asked for, <c>org/name</c>.</summary>
    public string ModelId { get; }
}
