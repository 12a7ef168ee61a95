namespace ZipLlm.Codecs.Entropy;

/// <summary>How <see cref="ContextRans"/> decodes: by its scalar twin, or eight lanes a vector with AVX2, or with AVX-512's 256-bit forms.</summary>
internal enum RansPath
{
    /// <summary>One lane at a time.</summary>
    Scalar,
    /// <summary>AVX2 vectors of eight lanes.</summary>
    Avx2,
    /// <summary>The same vectors with AVX-512VL instructions.</summary>
    Avx512,
}
