using System.Buffers.Binary;
using System.Text;
using ZipLlm.Safetensors;
using Xunit.Abstractions;
using ZipLlm.Tests.TestSupport;
using static ZipLlm.Tests.Safetensors.SafetensorsBytes;

namespace ZipLlm.Tests.Safetensors;

/// <summary>
/// Mutates valid files at random (fixed seeds) and holds the reader to its contract: only
/// <see cref="InvalidDataException"/> or <see cref="EndOfStreamException"/> ever escapes, and
/// whatever is accepted describes the mutated bytes exactly.
/// </summary>
public class SafetensorsMutationTests(ITestOutputHelper output)
{
    private const string MutantName = "mutant.safetensors";
    private const int IterationsPerSeed = 6_000;
    private const int OpenFromDiskEvery = 12;

    // Splices that reach the parser's corners: structure, types, extreme numbers, escapes that
    // decode to lone surrogates, known keys and dtypes, deep nesting, bytes that are not UTF-8.
    private static readonly byte[][] s_tokens =
    [
        .. new[]
        {
            "{", "}", "[", "]", ",", ":", "\"", "\"\"", "null", "true", "false", "0", "1", "-1", "8", "1.5", "2e0",
            "1e400", "-0", "18446744073709551616", "9223372036854775807", "4611686018427387904", "1099511627776",
            "\"\\ud800\"", "\"\\udc00x\"", "\"\\ud83d\\ude00\"", "\\u", "\\", "\"\\u0077\"", "\"__metadata__\"", "\"dtype\"",
            "\"shape\"", "\"data_offsets\"", "\"F4\"", "\"BF16\"", "\"F6_E2M3\"", "\"C64\"", "\"bf16\"", "[]", "{}", "[0,0]",
            "[[[[[[[[[[[[", "]]]]]]]]]]]]", " ", "\n", "/*", "*/", "\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}",
            ",\"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}", "version https://git-lfs",
        }.Select(Encoding.UTF8.GetBytes),
        [0], [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82],
    ];

    /// <summary>Valid files to mutate: several dtypes, metadata, empty and scalar tensors, padding, odd lengths.</summary>
    private static byte[][] ValidFiles()
    {
        string handWritten = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9\"},"
            + Entry("emb", "BF16", "[2,3]", 0, 12) + ","
            + Entry("scale", "F32", "[]", 12, 16) + ","
            + Entry("empty", "F16", "[0,4]", 16, 16) + ","
            + Entry("mask", "U8", "[7]", 16, 23) + ","
            + Entry("fp4", "F4", "[2,2]", 23, 25) + ","
            + Entry("fp6", "F6_E3M2", "[4]", 25, 28) + ","
            + Entry("ids", "I64", "[1]", 28, 36) + "}   ";
        string reordered = "{ \"z\" : {\"shape\":[2],\"dtype\":\"F64\",\"data_offsets\":[3,19]},\n"
            + " \"模型\" : {\"data_offsets\":[0,3],\"dtype\":\"I8\",\"shape\":[3]}, \"e\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[19,19]} }";
        SafetensorsHeader created = SafetensorsHeader.Create(
            [("a", DType.F8_E4M3, [5]), ("b", DType.C64, [1, 2]), ("s", DType.U16, []), ("e", DType.I32, [3, 0])],
            new Dictionary<string, string> { ["format"] = "pt", ["k"] = "v" });
        return
        [
            File(handWritten, 36),
            File(reordered, 19),
            File(created.HeaderBytes, Data(created.DataLength)),
            File("{}      ", 0),
            File("{" + Entry("only", "U8", "[1]", 0, 1) + "}", 1),
        ];
    }

    private static int HeaderEnd(byte[] file)
    {
        if (file.Length < 8)
        {
            return file.Length;
        }
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file);
        return length <= (ulong)(file.Length - 8) ? 8 + (int)length : file.Length;
    }

    private static byte[] WithPrefix(byte[] file, ulong length)
    {
        byte[] copy = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy, length);
        return copy;
    }

    private static byte[] Replace(byte[] file, int at, int remove, ReadOnlySpan<byte> insert, bool fixPrefix)
    {
        byte[] result = [.. file.AsSpan(0, at), .. insert, .. file.AsSpan(at + remove)];
        if (fixPrefix && file.Length >= 8 && at >= 8)
        {
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file);
            BinaryPrimitives.WriteUInt64LittleEndian(result, unchecked(length + (ulong)(insert.Length - remove)));
        }
        return result;
    }

    private static byte[] Mutate(byte[] file, Random rng)
    {
        int headerEnd = HeaderEnd(file);
        int InHeader() => headerEnd > 8 ? rng.Next(8, headerEnd + 1) : Math.Min(8, file.Length);
        bool fix = rng.Next(4) != 0;
        switch (rng.Next(10))
        {
            case 0: // flip a few bytes anywhere, mostly in the header
            {
                byte[] copy = (byte[])file.Clone();
                int flips = rng.Next(1, 4);
                for (int i = 0; i < flips && copy.Length > 0; i++)
                {
                    int at = rng.Next(3) != 0 && headerEnd > 8 ? rng.Next(8, headerEnd) : rng.Next(copy.Length);
                    copy[at] ^= (byte)rng.Next(1, 256);
                }
                return copy;
            }
            case 1: // truncate
                return file[..rng.Next(file.Length + 1)];
            case 2: // insert random bytes into the header
            {
                var bytes = new byte[rng.Next(1, 9)];
                rng.NextBytes(bytes);
                return Replace(file, InHeader(), 0, bytes, fix);
            }
            case 3: // delete bytes from the header
            {
                int at = InHeader();
                return Replace(file, at, Math.Min(rng.Next(1, 9), headerEnd - at), [], fix);
            }
            case 4: // change the length prefix
            {
                if (file.Length < 8)
                {
                    return file;
                }
                ulong current = BinaryPrimitives.ReadUInt64LittleEndian(file);
                ulong[] choices =
                [
                    0, 1, unchecked(current + (ulong)rng.Next(-16, 17)), (ulong)(file.Length - 8), (ulong)(file.Length - 7),
                    SafetensorsFormat.MaxHeaderSize, SafetensorsFormat.MaxHeaderSize + 1, (ulong)long.MaxValue, 1UL << 63, ulong.MaxValue,
                    (ulong)rng.NextInt64() * 2 + (ulong)rng.Next(2),
                ];
                return WithPrefix(file, choices[rng.Next(choices.Length)]);
            }
            case 5: // splice a JSON token over part of the header
            case 6:
            {
                int at = InHeader();
                return Replace(file, at, Math.Min(rng.Next(0, 7), headerEnd - at), s_tokens[rng.Next(s_tokens.Length)], fix);
            }
            case 7: // change a number in the header, keeping the JSON well formed
            {
                int[] digits = [.. Enumerable.Range(8, Math.Max(0, headerEnd - 8)).Where(i => file[i] is >= (byte)'0' and <= (byte)'9')];
                if (digits.Length == 0)
                {
                    return file;
                }
                string[] numbers = ["0", "1", "2", "3", "7", "8", "9", "12", "16", "99", "4096"];
                return Replace(file, digits[rng.Next(digits.Length)], 1, Encoding.ASCII.GetBytes(numbers[rng.Next(numbers.Length)]), fixPrefix: true);
            }
            case 8: // copy a slice of the header elsewhere in it
            {
                int from = InHeader();
                int length = Math.Min(rng.Next(1, 40), headerEnd - from);
                byte[] slice = file.AsSpan(from, Math.Max(0, length)).ToArray();
                return Replace(file, InHeader(), 0, slice, fix);
            }
            default: // grow or shrink the data section
                return rng.Next(2) == 0
                    ? [.. file, .. Data(rng.Next(1, 17))]
                    : file[..Math.Max(0, file.Length - rng.Next(1, 9))];
        }
    }

    /// <summary>The accepted header must describe exactly these bytes: packed tensors, exact lengths, exact rewrite.</summary>
    private static string? CheckAccepted(SafetensorsHeader header, byte[] file)
    {
        if (header.FileLength != file.Length)
        {
            return $"FileLength {header.FileLength} but {file.Length} bytes";
        }
        if (!header.HeaderBytes.AsSpan().SequenceEqual(file.AsSpan(8, header.HeaderBytes.Length)))
        {
            return "HeaderBytes differ from the file's header";
        }
        long expected = 0;
        foreach (TensorInfo t in header.Tensors)
        {
            if (t.Begin != expected || t.End < t.Begin)
            {
                return $"tensor \"{t.Name}\" at [{t.Begin}, {t.End}) does not follow {expected}";
            }
            long bits = t.ElementCount * BitsByName[t.DType.Name()];
            if (bits % 8 != 0 || bits / 8 != t.Length)
            {
                return $"tensor \"{t.Name}\" has {t.Length} bytes for {t.ElementCount} {t.DType}";
            }
            expected = t.End;
        }
        if (expected != header.DataLength || header.DataOffset + expected != file.Length)
        {
            return $"tensors end at {expected}, data section is {file.Length - header.DataOffset} bytes";
        }
        if (!file.AsSpan().SequenceEqual(Rewrite(header, file.AsSpan((int)header.DataOffset))))
        {
            return "rewrite differs";
        }
        return null;
    }

    [Fact]
    public void Read_RandomMutations_OnlyInvalidDataOrEndOfStreamEscapes()
    {
        byte[][] valid = ValidFiles();
        foreach (byte[] file in valid)
        {
            Assert.Null(CheckAccepted(Read(file), file));
        }

        using var dir = new TempDir();
        string path = dir.Combine(MutantName);
        var failures = new List<string>();
        int accepted = 0, invalid = 0, ended = 0, opened = 0;
        int[] seeds = [1, 2, 3, 4];
        foreach (int seed in seeds)
        {
            var rng = new Random(seed);
            for (int iteration = 0; iteration < IterationsPerSeed && failures.Count < 10; iteration++)
            {
                byte[] mutant = valid[rng.Next(valid.Length)];
                int rounds = rng.Next(1, 4);
                for (int r = 0; r < rounds; r++)
                {
                    mutant = Mutate(mutant, rng);
                }
                string where = $"seed {seed} iteration {iteration} ({mutant.Length} bytes: {Convert.ToHexString(mutant.AsSpan(0, Math.Min(mutant.Length, 160)))})";

                Type? outcome = null;
                try
                {
                    SafetensorsHeader header = SafetensorsHeader.Read(new MemoryStream(mutant, writable: false), mutant.Length, MutantName);
                    accepted++;
                    if (CheckAccepted(header, mutant) is string problem)
                    {
                        failures.Add($"{where}: accepted but {problem}");
                    }
                }
                catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException)
                {
                    outcome = ex.GetType();
                    _ = ex is InvalidDataException ? invalid++ : ended++;
                    if (!ex.Message.Contains(MutantName, StringComparison.Ordinal))
                    {
                        failures.Add($"{where}: message does not name the file: {ex.Message}");
                    }
                }
                catch (Exception ex)
                {
                    failures.Add($"{where}: {ex.GetType()} escaped: {ex.Message}");
                    continue;
                }

                if (iteration % OpenFromDiskEvery == 0)
                {
                    opened++;
                    System.IO.File.WriteAllBytes(path, mutant);
                    if (OpenFromDisk(path, mutant, outcome) is string problem)
                    {
                        failures.Add($"{where}: from disk, {problem}");
                    }
                }
            }
        }

        output.WriteLine($"accepted {accepted}, invalid data {invalid}, end of stream {ended}, opened from disk {opened}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        // The mutations must reach every outcome, or this test proves little.
        Assert.True(accepted > 100 && invalid > 1_000 && ended > 100 && opened > 1_000, $"accepted {accepted}, invalid {invalid}, ended {ended}, opened {opened}");
    }

    /// <summary>Opens the mutant from disk: same outcome as from memory, and every accepted tensor reads back.</summary>
    private static string? OpenFromDisk(string path, byte[] mutant, Type? expectedOutcome)
    {
        try
        {
            using SafetensorsFile file = SafetensorsFile.Open(path);
            if (expectedOutcome is not null)
            {
                return $"accepted, but from memory {expectedOutcome.Name}";
            }
            if (file.Length != mutant.Length || CheckAccepted(file.Header, mutant) is string problem)
            {
                return "accepted a header that does not describe the file";
            }
            foreach (TensorInfo t in file.Header.Tensors)
            {
                var bytes = new byte[t.Length];
                file.ReadTensor(t, 0, bytes);
                if (!bytes.AsSpan().SequenceEqual(mutant.AsSpan((int)(file.Header.DataOffset + t.Begin), bytes.Length)))
                {
                    return $"tensor \"{t.Name}\" reads back different bytes";
                }
            }
            return null;
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException)
        {
            if (ex.GetType() != expectedOutcome)
            {
                return $"{ex.GetType().Name}, but from memory {expectedOutcome?.Name ?? "accepted"}";
            }
            return ex.Message.Contains(path, StringComparison.Ordinal) ? null : $"message does not name the path: {ex.Message}";
        }
        catch (Exception ex)
        {
            return $"{ex.GetType()} escaped: {ex.Message}";
        }
    }
}
