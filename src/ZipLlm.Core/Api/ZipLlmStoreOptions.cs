using Microsoft.Extensions.Logging;

namespace ZipLlm;

/// <summary>How <see cref="ZipLlmStore.Open(string, ZipLlmStoreOptions?)"/> opens a store.</summary>
public sealed class ZipLlmStoreOptions
{
    /// <summary>
    /// Most chunks encoded or decoded at once, from 1 to 1024; 0 (the default) means one per processor. Memory grows
    /// with it (two 4 MiB chunks and their buffers per worker), never with the size of a model.
    /// </summary>
    public int Threads { get; set; }

    /// <summary>Create an empty store when there is none at the location (the default is to refuse).</summary>
    public bool CreateIfMissing { get; set; }

    /// <summary>
    /// How long reads keep holding the store's lock (shared) after the last one ends: 2 s by default, zero to 10 minutes.
    /// Reads that follow each other within it take the lock once, which on S3 saves a lease (three requests) per
    /// call; a <c>zipllm remove</c> or <c>gc</c> elsewhere waits that much longer. Zero lets go after each read.
    /// </summary>
    public TimeSpan ReadLockLinger { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Megabytes of decoded chunks <see cref="ZipLlmStore.ReadFileAsync"/> keeps for the reads after it (one cache for every
    /// file: many small reads of one chunk, and the finetunes of one base, decode each chunk once). 0 keeps none; the
    /// default is 256. Kept only as reads fill it.
    /// </summary>
    public int CacheMegabytes { get; set; } = 256;

    /// <summary>Where compress logs what it stored and why (a model paired with its base, damaged manifests skipped); none by default.</summary>
    public ILogger? Logger { get; set; }
}
