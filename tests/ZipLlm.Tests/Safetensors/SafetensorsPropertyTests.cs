using System.Text;
using ZipLlm.Safetensors;
using ZipLlm.Tests.TestSupport;
using static ZipLlm.Tests.Safetensors.SafetensorsBytes;

namespace ZipLlm.Tests.Safetensors;

/// <summary>Random headers (fixed seeds) written to disk and read back must come back exactly.</summary>
public class SafetensorsPropertyTests
{
    private static readonly DType[] s_dtypes = Enum.GetValues<DType>();

    // Pieces of names: plain ASCII, characters JSON must escape, HTML-sensitive ones a JSON writer
    // may escape, non-ASCII and a surrogate pair (kept whole so the name stays well-formed).
    private static readonly string[] s_namePieces =
        ["model", ".", "layers", "_", "0", "7", "weight", "/", "-", " ", "\"", "\\", "\n", "\t", "\u0001", "<", ">", "&", "'", "+", "é", "模型", "🙂", "Ω", "__metadata", "x"];

    private sealed record Spec(string Name, DType DType, long[] Shape, long Begin, long End);

    private static string RandomText(Random rng, int maxPieces)
    {
        var sb = new StringBuilder();
        int pieces = rng.Next(maxPieces + 1);
        for (int i = 0; i < pieces; i++)
        {
            sb.Append(s_namePieces[rng.Next(s_namePieces.Length)]);
        }
        return sb.ToString();
    }

    private static long[] RandomShape(Random rng, DType dtype)
    {
        int rank = rng.Next(5);
        var shape = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            shape[i] = rng.Next(10) == 0 ? 0 : rng.Next(1, 7);
        }
        long elements = shape.Aggregate(1L, (a, d) => a * d);
        // Sub-byte dtypes must fill whole bytes; 4 more elements per existing one always do (4 × 4 and 4 × 6 bits).
        return elements * BitsByName[dtype.Name()] % 8 == 0 ? shape : [.. shape, 4];
    }

    /// <summary>Random tensors packed in the order given, offsets computed here and not by the code under test.</summary>
    private static List<Spec> RandomTensors(Random rng)
    {
        var specs = new List<Spec>();
        var names = new HashSet<string>(StringComparer.Ordinal) { SafetensorsFormat.MetadataKey };
        int count = rng.Next(13);
        long offset = 0;
        while (specs.Count < count)
        {
            string name = RandomText(rng, 4);
            if (!names.Add(name))
            {
                continue;
            }
            DType dtype = s_dtypes[rng.Next(s_dtypes.Length)];
            long[] shape = RandomShape(rng, dtype);
            long bytes = shape.Aggregate(1L, (a, d) => a * d) * BitsByName[dtype.Name()] / 8;
            specs.Add(new Spec(name, dtype, shape, offset, offset + bytes));
            offset += bytes;
        }
        return specs;
    }

    private static Dictionary<string, string>? RandomMetadata(Random rng)
    {
        if (rng.Next(2) == 0)
        {
            return null;
        }
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        int count = rng.Next(5);
        for (int i = 0; i < count; i++)
        {
            metadata[RandomText(rng, 3)] = RandomText(rng, 6);
        }
        return metadata;
    }

    private static void AssertMatches(IReadOnlyList<Spec> expected, IReadOnlyList<TensorInfo> actual, string context)
    {
        Assert.True(expected.Count == actual.Count, $"{context}: {actual.Count} tensors, expected {expected.Count}");
        for (int i = 0; i < expected.Count; i++)
        {
            Spec e = expected[i];
            TensorInfo a = actual[i];
            Assert.True(
                e.Name == a.Name && e.DType == a.DType && e.Shape.AsSpan().SequenceEqual(a.Shape) && e.Begin == a.Begin && e.End == a.End,
                $"{context}: tensor {i} is {a}, expected {e}");
        }
    }

    private static void AssertReadBack(string path, byte[] file, SafetensorsHeader written, IReadOnlyList<Spec> specs, string context)
    {
        Assert.True(file.AsSpan().SequenceEqual(System.IO.File.ReadAllBytes(path)), $"{context}: file on disk differs");
        using SafetensorsFile opened = SafetensorsFile.Open(path);
        Assert.True(written.HeaderBytes.AsSpan().SequenceEqual(opened.Header.HeaderBytes), $"{context}: header bytes differ");
        Assert.Equal(written.Tensors, opened.Header.Tensors);
        Assert.Equal(file.Length, opened.Header.FileLength);
        AssertMatches(specs, opened.Header.Tensors, context);

        long dataStart = opened.Header.DataOffset;
        foreach (Spec spec in specs)
        {
            TensorInfo tensor = opened.Header.Tensors.Single(t => t.Name == spec.Name);
            var bytes = new byte[spec.End - spec.Begin];
            opened.ReadTensor(tensor, 0, bytes);
            Assert.True(
                bytes.AsSpan().SequenceEqual(file.AsSpan((int)(dataStart + spec.Begin), bytes.Length)),
                $"{context}: bytes of tensor \"{spec.Name}\" differ");
        }
        Assert.True(file.AsSpan().SequenceEqual(Rewrite(opened.Header, file.AsSpan((int)dataStart))), $"{context}: rewrite differs");
    }

    [Fact]
    public void Create_RandomHeaders_WriteAndReadBackExactly()
    {
        using var dir = new TempDir();
        string path = dir.Combine("random.safetensors");
        var rng = new Random(20240611);
        for (int run = 0; run < 300; run++)
        {
            string context = $"seed 20240611 run {run}";
            List<Spec> specs = RandomTensors(rng);
            Dictionary<string, string>? metadata = RandomMetadata(rng);

            SafetensorsHeader header = SafetensorsHeader.Create(specs.Select(s => (s.Name, s.DType, s.Shape)), metadata);

            Assert.Equal(0, header.HeaderBytes.Length % SafetensorsFormat.HeaderAlignment);
            AssertMatches(specs, header.Tensors, context);
            if (metadata is null)
            {
                Assert.Null(header.Metadata);
            }
            else
            {
                Assert.Equal(metadata.OrderBy(p => p.Key, StringComparer.Ordinal), header.Metadata!.OrderBy(p => p.Key, StringComparer.Ordinal));
            }

            var data = new byte[header.DataLength];
            rng.NextBytes(data);
            using (var stream = new FileStream(path, FileMode.Create, FileAccess.Write))
            {
                header.WriteTo(stream);
                stream.Write(data);
            }
            AssertReadBack(path, File(header.HeaderBytes, data), header, specs, context);
        }
    }

    /// <summary>
    /// Hand-written JSON for random tensors: entries shuffled away from data order, fields in random
    /// order, random whitespace, metadata anywhere, random padding. Every byte must be preserved.
    /// </summary>
    [Fact]
    public void Read_RandomHandWrittenHeaders_PreservedExactly()
    {
        using var dir = new TempDir();
        string path = dir.Combine("hand.safetensors");
        var rng = new Random(77);
        string[] blanks = ["", "", " ", "  ", "\n", "\t", "\r\n "];
        string Ws() => blanks[rng.Next(blanks.Length)];

        for (int run = 0; run < 200; run++)
        {
            string context = $"seed 77 run {run}";
            // Names as plain ASCII here, so the JSON below needs no escaping.
            List<Spec> specs = RandomTensors(rng)
                .Select((s, i) => s with { Name = $"t{i}.{rng.Next(1000)}" })
                .ToList();
            var members = new List<(Spec? Spec, string Json)>();
            foreach (Spec s in specs)
            {
                string[] fields =
                [
                    $"\"dtype\"{Ws()}:{Ws()}\"{s.DType.Name()}\"",
                    $"\"shape\"{Ws()}:{Ws()}[{Ws()}{string.Join($"{Ws()},{Ws()}", s.Shape)}{Ws()}]",
                    $"\"data_offsets\"{Ws()}:{Ws()}[{Ws()}{s.Begin}{Ws()},{Ws()}{s.End}{Ws()}]",
                ];
                rng.Shuffle(fields);
                members.Add((s, $"\"{s.Name}\"{Ws()}:{Ws()}{{{Ws()}{string.Join($"{Ws()},{Ws()}", fields)}{Ws()}}}"));
            }
            if (rng.Next(2) == 0)
            {
                members.Insert(rng.Next(members.Count + 1), (null, $"\"__metadata__\"{Ws()}:{Ws()}{{\"format\":{Ws()}\"pt\"}}"));
            }
            (Spec? Spec, string Json)[] shuffled = [.. members];
            rng.Shuffle(shuffled);
            string json = $"{Ws()}{{{Ws()}{string.Join($"{Ws()},{Ws()}", shuffled.Select(m => m.Json))}{Ws()}}}" + new string(' ', rng.Next(16));
            // Data order; empty tensors sharing an offset stay in header order.
            List<Spec> dataOrder = [.. shuffled.Where(m => m.Spec is not null).Select(m => m.Spec!).OrderBy(t => t.Begin).ThenBy(t => t.End)];
            byte[] headerBytes = Encoding.UTF8.GetBytes(json);
            var data = new byte[specs.Count == 0 ? 0 : specs[^1].End];
            rng.NextBytes(data);
            byte[] file = File(headerBytes, data);

            SafetensorsHeader header = Read(file);

            Assert.True(headerBytes.AsSpan().SequenceEqual(header.HeaderBytes), $"{context}: header bytes differ");
            System.IO.File.WriteAllBytes(path, file);
            AssertReadBack(path, file, header, dataOrder, context);
        }
    }
}
