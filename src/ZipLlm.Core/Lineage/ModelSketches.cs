using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;
using ZipLlm.Store;

namespace ZipLlm.Lineage;

/// <summary>Where sketches come from: a model's folder, the object a stored model recorded, or its tensors' objects.</summary>
internal static class ModelSketches
{
    /// <summary>Sketches the model in <paramref name="folder"/> from its safetensors files (a few hundred kilobytes read).</summary>
    /// <exception cref="InvalidDataException">A safetensors file is malformed.</exception>
    /// <exception cref="IOException">A file cannot be read.</exception>
    public static ModelSketch FromFolder(ModelId modelId, string folder, CancellationToken cancellationToken = default)
    {
        var files = new List<SafetensorsFile>();
        try
        {
            var sources = new List<SketchSource>();
            foreach (string relative in ModelFolder.Enumerate(modelId, folder).Where(p => p.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)))
            {
                SafetensorsFile file = SafetensorsFile.Open(Path.Combine(folder, relative));
                files.Add(file);
                foreach (TensorInfo tensor in file.Header.Tensors)
                {
                    sources.Add(new SketchSource(tensor.Name, tensor.DType, tensor.Shape, tensor.Length,
                        (offset, destination) => file.ReadTensor(tensor, offset, destination)));
                }
            }
            return ModelSketch.Build(sources, cancellationToken);
        }
        finally
        {
            foreach (SafetensorsFile file in files)
            {
                file.Dispose();
            }
        }
    }

    /// <summary>Reads stored models' sketches with one object reader and one codec per chunk size, however many are read.</summary>
    internal sealed class StoredSketchReader(ModelStore store, CodecOptions options) : IDisposable
    {
        private readonly ObjectStore.ObjectReader _reader = store.Objects.OpenReader();
        private readonly Codecs _codecs = new(options);

        /// <summary>
        /// The sketch of a stored model: the one it recorded, or, for a model stored before sketches were (or whose sketch
        /// object is damaged), one made by decoding just the sampled stretches of its tensors' objects.
        /// </summary>
        /// <exception cref="StoreDamageException">The model's objects cannot be read.</exception>
        public ModelSketch Read(Manifest manifest, Action<string>? onFallback = null)
        {
            if (manifest.Sketch is { } sketchHash)
            {
                try
                {
                    EncodedTensor encoded = _reader.Open(sketchHash);
                    var bytes = new byte[encoded.Length];
                    ReadRange(encoded, 0, bytes, _codecs);
                    return ModelSketch.Parse(bytes);
                }
                catch (Exception ex) when (ex is InvalidDataException or StoreDamageException or EndOfStreamException or IOException)
                {
                    onFallback?.Invoke($"its sketch {sketchHash} cannot be read ({ex.Message})");
                }
            }
            else
            {
                onFallback?.Invoke("it was stored without a sketch");
            }
            var sources = new List<SketchSource>();
            foreach (StoredTensor tensor in manifest.Files.SelectMany(f => f.Tensors ?? []))
            {
                if (!DTypes.TryParse(System.Text.Encoding.UTF8.GetBytes(tensor.DType), out DType dtype) || !ModelSketch.IsSampled(dtype))
                {
                    continue;
                }
                long length = dtype.ByteCount(tensor.ElementCount());
                ContentHash objectHash = tensor.Object;
                sources.Add(new SketchSource(tensor.Name, dtype, tensor.Shape, length,
                    (offset, destination) => ReadRange(_reader.Open(objectHash), offset, destination, _codecs)));
            }
            return ModelSketch.Build(sources);
        }

        public void Dispose()
        {
            _codecs.Dispose();
            _reader.Dispose();
        }
    }

    /// <summary>Reads <paramref name="destination"/>'s length of bytes at <paramref name="offset"/>, decoding only the chunks it touches.</summary>
    private static void ReadRange(EncodedTensor tensor, long offset, Span<byte> destination, Codecs codecs)
    {
        int chunkSize = tensor.ChunkSize;
        ChunkCodec codec = codecs.For(chunkSize);
        ChunkBuffer chunk = codec.Buffers.Rent((int)Math.Min(chunkSize, Math.Max(tensor.Length, 1)));
        try
        {
            while (!destination.IsEmpty)
            {
                long start = offset / chunkSize * chunkSize;
                int length = (int)Math.Min(chunkSize, tensor.Length - start);
                if (length <= 0)
                {
                    throw new EndOfStreamException("Read past the end of a stored tensor.");
                }
                tensor.ReadChunk(start, chunk.AsSpan(0, length), codec);
                int skip = (int)(offset - start);
                int take = Math.Min(length - skip, destination.Length);
                chunk.AsSpan(skip, take).CopyTo(destination);
                destination = destination[take..];
                offset += take;
            }
        }
        finally
        {
            codec.Buffers.Return(chunk);
        }
    }

    /// <summary>One codec per chunk size met: objects written with other options may be chunked differently.</summary>
    private sealed class Codecs(CodecOptions options) : IDisposable
    {
        private readonly Dictionary<int, ChunkCodec> _bySize = [];

        public ChunkCodec For(int chunkSize)
        {
            int size = Math.Max(chunkSize, options.ChunkSize);
            if (!_bySize.TryGetValue(size, out ChunkCodec? codec))
            {
                codec = new ChunkCodec(options with { ChunkSize = size });
                _bySize[size] = codec;
            }
            return codec;
        }

        public void Dispose()
        {
            foreach (ChunkCodec codec in _bySize.Values)
            {
                codec.Dispose();
            }
        }
    }
}
