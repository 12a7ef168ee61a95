using Microsoft.Extensions.Logging;
using ZipLlm.Codecs;
using ZipLlm.Domain;
using ZipLlm.Safetensors;

namespace ZipLlm.Store;

/// <summary>
/// What the store holds already: objects found sound (each opened to check it once), files by their hash, the base's
/// tensors by name and which of them pair with a finetune's, and the chain of bases each delta is recorded with.
/// </summary>
internal sealed partial class ModelIngester
{
    /// <summary>
    /// Whether an object of this name is stored and sound enough to build on: its header and chunk index read and
    /// it holds <paramref name="length"/> bytes. A damaged one (truncated, emptied, replaced) is stored again rather
    /// than trusted, so a new model never leans on an object that cannot be read. Its chunks are checked on decode.
    /// </summary>
    private bool IsStored(ContentHash hash, long length, IngestState state)
    {
        // Objects are immutable and named by their bytes: one found sound (or written) by this ingester stays so.
        if (_sound.TryGetValue(hash, out long known) && known == length)
        {
            return true;
        }
        if (!store.Objects.Contains(hash))
        {
            return false;
        }
        try
        {
            using ObjectStore.ObjectReader reader = store.Objects.OpenReader();
            if (reader.OpenWithoutBase(hash).Length == length)
            {
                _sound[hash] = length;
                store.Objects.Freshen(hash, DateTimeOffset.UtcNow); // gc's grace then counts from this reuse
                return true;
            }
            logger.LogWarning("{Model}: object {Object} is stored with the wrong length; storing it again", state.ModelId, hash);
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or NotSupportedException or IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("{Model}: object {Object} is damaged ({Reason}); storing it again", state.ModelId, hash, ex.Message);
        }
        return false;
    }

    /// <summary>
    /// Whether the base's tensor of the same name can serve as a delta's base, by <see cref="DeltaPairing"/>'s rule
    /// with resized rows and BF16/F16 conversion allowed (the base is seen at the finetune's length and dtype). A dtype
    /// the manifest names but this build does not know pairs with nothing.
    /// </summary>
    private static bool IsPartner(StoredTensor partner, TensorInfo tensor, out BaseConversion conversion)
    {
        conversion = BaseConversion.None;
        if (!DTypes.TryParse(System.Text.Encoding.UTF8.GetBytes(partner.DType), out DType partnerDType)
            || DeltaPairing.Pair(tensor.Name, tensor.DType, tensor.Shape, partner.Name, partnerDType, partner.Shape,
                DeltaPairing.Rule.Store) == DeltaPairing.Fit.None)
        {
            return false;
        }
        conversion = DeltaPairing.ConversionFor(tensor.DType, partnerDType);
        return true;
    }

    private Dictionary<string, StoredTensor> BaseTensorsByName(ModelId baseId)
    {
        var byName = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        foreach (StoredFile file in store.ReadManifest(baseId).Files)
        {
            foreach (StoredTensor tensor in file.Tensors ?? [])
            {
                byName.TryAdd(tensor.Name, tensor);
            }
        }
        return byName;
    }

    /// <summary>Files already stored, found by their SHA-256 through the store's catalog (read afresh first).</summary>
    private StoredFileLookup FilesByHash()
    {
        store.Catalog.SyncOnce();
        return new StoredFileLookup(store, logger);
    }

    /// <summary>
    /// The files with each delta tensor's chain of bases recorded, read from the objects' headers (a deduplicated
    /// tensor may be a delta stored by another model), so the manifest alone says what the model needs.
    /// </summary>
    private StoredFile[] WithBases(StoredFile[] files)
    {
        var chains = new Dictionary<ContentHash, ContentHash[]?>();
        ContentHash[]? ChainOf(ContentHash start)
        {
            if (!chains.TryGetValue(start, out ContentHash[]? chain))
            {
                var bases = new List<ContentHash>();
                for (ContentHash? hash = store.Objects.ReadBaseReference(start); hash is { } current; hash = store.Objects.ReadBaseReference(current))
                {
                    if (bases.Count >= ObjectStore.MaxDeltaDepth || current == start || bases.Contains(current))
                    {
                        throw new InvalidDataException($"Object {start}: chain of deltas deeper than {ObjectStore.MaxDeltaDepth} or circular; the store is corrupt.");
                    }
                    bases.Add(current);
                }
                chain = bases.Count == 0 ? null : [.. bases];
                chains[start] = chain;
            }
            return chain;
        }

        return files.Select(file => file.Tensors is null ? file : file with
        {
            Tensors = file.Tensors.Select(t => t with { Bases = ChainOf(t.Object) }).ToArray(),
        }).ToArray();
    }
}

/// <summary>
/// Stored files by their SHA-256: the catalog names the model holding one, and that model's manifest (parsed once
/// a run) gives its entry. A model removed since, or a damaged manifest, only means the file is not found again.
/// </summary>
internal sealed class StoredFileLookup(ModelStore store, ILogger logger)
{
    /// <summary>The stored file of SHA-256 <paramref name="sha256"/>, when one is.</summary>
    public bool TryGetValue(ContentHash sha256, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out StoredFile? file)
    {
        file = null;
        if (store.Catalog.FindFile(sha256) is not { } owner)
        {
            return false;
        }
        try
        {
            file = store.ReadManifest(owner).Files.FirstOrDefault(f => f.Sha256 == sha256);
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidDataException or NotSupportedException or IOException)
        {
            logger.LogDebug("Not looking in {Model} for a stored file: {Reason}", owner, ex.Message);
        }
        return file is not null;
    }
}
