using ZipLlm.Codecs;
using ZipLlm.Domain;

namespace ZipLlm.Store;

/// <summary>The counters of one ingest, shared by the files stored side by side.</summary>
internal sealed partial class ModelIngester
{
    /// <summary>Counters of one ingest, updated by the files being stored side by side.</summary>
    private sealed class IngestState(ModelId modelId, long total)
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<ContentHash, byte> _claimed = new();
        private long _done, _addedBytes, _hashTicks, _encodeTicks;
        private int _dedupFiles, _tensors, _dedupTensors, _deltaTensors;

        public ModelId ModelId { get; } = modelId;
        public TransformCounts Transforms { get; } = new();
        public long AddedBytes => Interlocked.Read(ref _addedBytes);
        public int DedupFiles => _dedupFiles;
        public int Tensors => _tensors;
        public int DedupTensors => _dedupTensors;
        public int DeltaTensors => _deltaTensors;
        public TimeSpan HashTime => TimeSpan.FromTicks(Interlocked.Read(ref _hashTicks));
        public TimeSpan EncodeTime => TimeSpan.FromTicks(Interlocked.Read(ref _encodeTicks));

        /// <summary>Whether this caller is the one to store <paramref name="hash"/> in this ingest.</summary>
        public bool Claim(ContentHash hash) => _claimed.TryAdd(hash, 0);

        public void AddBytes(long bytes) => Interlocked.Add(ref _addedBytes, bytes);
        public void CountDedupFile() => Interlocked.Increment(ref _dedupFiles);
        public void CountTensor() => Interlocked.Increment(ref _tensors);
        public void CountDedupTensor() => Interlocked.Increment(ref _dedupTensors);
        public void CountDeltaTensor() => Interlocked.Increment(ref _deltaTensors);
        public void AddHashTime(TimeSpan time) => Interlocked.Add(ref _hashTicks, time.Ticks);
        public void AddEncodeTime(TimeSpan time) => Interlocked.Add(ref _encodeTicks, time.Ticks);

        public void Advance(long bytes, IProgress<ByteProgress>? progress)
        {
            long done = Interlocked.Add(ref _done, bytes);
            progress?.Report(new ByteProgress(ModelId.ToString(), done, total));
        }
    }
}
