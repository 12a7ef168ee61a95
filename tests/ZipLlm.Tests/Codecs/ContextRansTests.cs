using ZipLlm.Codecs.Entropy;

namespace ZipLlm.Tests.Codecs;

public class ContextRansTests
{
    private static readonly int[] s_laneCounts = [ContextRans.LegacyLanes, ContextRans.DefaultLanes];

    public static TheoryData<int, int, int> Shapes() => WithLanes(
    [
        (0, 1), (1, 1), (7, 1), (8, 1), (9, 2), (15, 3), (16, 16), (17, 16), (1000, 64), (4099, 16), (100_003, 16), (100_000, 1),
    ]);

    /// <summary>Each shape with each lane count the format has had: 32 (version 3) and 64 (version 4).</summary>
    private static TheoryData<int, int, int> WithLanes((int Length, int Contexts)[] shapes)
    {
        var data = new TheoryData<int, int, int>();
        foreach ((int length, int contexts) in shapes)
        {
            foreach (int lanes in s_laneCounts)
            {
                data.Add(length, contexts, lanes);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void RoundTrip_EveryDistributionLengthAndContextCount_IsExact(int length, int contexts, int lanes)
    {
        var random = new Random(length * 31 + contexts);
        var rans = new ContextRans();
        foreach (Func<int, byte, byte> draw in Distributions(random))
        {
            byte[] context = new byte[length], symbols = new byte[length];
            for (int i = 0; i < length; i++)
            {
                context[i] = (byte)random.Next(contexts);
                symbols[i] = draw(i, context[i]);
            }
            ReadOnlySpan<byte> ctx = contexts == 1 ? default : context;
            byte[] encoded = new byte[ContextRans.MaxEncodedLength(length, contexts)];
            int written = rans.Encode(symbols, ctx, contexts, encoded, lanes);
            byte[] decoded = new byte[length];
            rans.Decode(encoded.AsSpan(0, written), ctx, contexts, decoded, lanes);
            Assert.Equal(symbols, decoded);
            // The estimate is what the codec chooses by: within a few bytes a lane and half a percent of the real length (each lane
            // ends on a whole word).
            long estimate = rans.EstimateLength(symbols, ctx, contexts, lanes);
            Assert.InRange(estimate - written, -2 * lanes, 4 * lanes + written / 200);
        }
    }

    public static TheoryData<int, int, int> VectorShapes() => WithLanes(
    [
        (0, 1), (1, 1), (7, 2), (8, 3), (31, 4), (32, 5), (33, 16), (63, 1), (64, 64), (65, 17), (127, 3), (128, 2), (129, 5), (1001, 64),
        (65_537, 16), (100_003, 1),
    ]);

    [Theory]
    [MemberData(nameof(VectorShapes))]
    public void Encode_VectorAndScalar_WriteTheSameBytes_AndEachDecodesTheOther(int length, int contexts, int lanes)
    {
        var random = new Random(length * 7 + contexts);
        var rans = new ContextRans();
        foreach (Func<int, byte, byte> draw in Distributions(random))
        {
            byte[] context = new byte[length], symbols = new byte[length];
            for (int i = 0; i < length; i++)
            {
                context[i] = (byte)random.Next(contexts);
                symbols[i] = draw(i, context[i]);
            }
            ReadOnlySpan<byte> ctx = contexts == 1 ? default : context;
            byte[] vector = new byte[ContextRans.MaxEncodedLength(length, contexts)], scalar = new byte[vector.Length];
            int vectorLength = rans.Encode(symbols, ctx, contexts, vector, vectorized: true, lanes);
            int scalarLength = rans.Encode(symbols, ctx, contexts, scalar, vectorized: false, lanes);
            Assert.Equal(scalar.AsSpan(0, scalarLength).ToArray(), vector.AsSpan(0, vectorLength).ToArray());
            foreach (RansPath path in ContextRans.SupportedPaths)
            {
                byte[] decoded = new byte[length];
                rans.Decode(vector.AsSpan(0, vectorLength), ctx, contexts, decoded, path, lanes);
                Assert.Equal(symbols, decoded);
            }
        }
    }

    public static TheoryData<int, int, int> BaseWordShapes() => WithLanes([(0, 16), (1, 16), (31, 16), (33, 16), (65, 16), (1000, 4), (65_537, 16)]);

    [Theory]
    [MemberData(nameof(BaseWordShapes))]
    public void Decode_ContextsFromBaseWords_MatchesDecodingWithTheContextsGiven(int length, int contexts, int lanes)
    {
        var random = new Random(length + contexts);
        foreach (WordContexts rule in new[] { new WordContexts(7, 0xFF, 112), new WordContexts(10, 0x1F, 0) })
        {
            ushort[] baseWords = new ushort[length];
            byte[] context = new byte[length], symbols = new byte[length];
            for (int i = 0; i < length; i++)
            {
                // Exponents below, inside and above the buckets, and some symbols that never renormalize for long.
                baseWords[i] = (ushort)random.Next(65536);
                context[i] = rule.Of(baseWords[i], contexts);
                symbols[i] = i % 1000 < 900 ? (byte)0 : (byte)Math.Min(255, Math.Abs((int)(Gaussian(random) * (1 + context[i]))));
            }
            var rans = new ContextRans();
            byte[] encoded = new byte[ContextRans.MaxEncodedLength(length, contexts)];
            int written = rans.Encode(symbols, context, contexts, encoded, lanes);
            foreach (RansPath path in ContextRans.SupportedPaths)
            {
                byte[] decoded = new byte[length];
                rans.Decode(encoded.AsSpan(0, written), baseWords, rule, contexts, decoded, path, lanes);
                Assert.Equal(symbols, decoded);
            }
            if (length > 0)
            {
                Assert.Throws<ArgumentException>(() => rans.Decode(encoded.AsSpan(0, written), baseWords.AsSpan(1), rule, contexts, new byte[length]));
            }
        }
    }

    [Theory]
    [InlineData(ContextRans.LegacyLanes)]
    [InlineData(ContextRans.DefaultLanes)]
    public void Encode_VectorAndScalar_AgreeOnEveryRenormalizationPattern(int lanes)
    {
        // Frequencies of 1 (the most renormalizations) beside one symbol of nearly all the scale (the fewest), mixed
        // lane by lane, so that every mask of renormalizing lanes occurs.
        var random = new Random(3);
        const int length = 1 << 16;
        byte[] symbols = new byte[length];
        for (int i = 0; i < length; i++)
        {
            symbols[i] = random.Next(3) == 0 ? (byte)(1 + random.Next(255)) : (byte)0;
        }
        var rans = new ContextRans();
        byte[] vector = new byte[ContextRans.MaxEncodedLength(length, 1)], scalar = new byte[vector.Length];
        int vectorLength = rans.Encode(symbols, default, 1, vector, vectorized: true, lanes);
        int scalarLength = rans.Encode(symbols, default, 1, scalar, vectorized: false, lanes);
        Assert.True(vector.AsSpan(0, vectorLength).SequenceEqual(scalar.AsSpan(0, scalarLength)));
    }

    [Fact]
    public void SupportedPaths_AreEveryPathTheProcessorRuns_TheBestLast()
    {
        var expected = new List<RansPath> { RansPath.Scalar };
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported)
        {
            expected.Add(RansPath.Avx2);
            if (System.Runtime.Intrinsics.X86.Avx512F.VL.IsSupported)
            {
                expected.Add(RansPath.Avx512);
            }
        }
        Assert.Equal(expected, ContextRans.SupportedPaths);
        Assert.Equal(expected[^1], ContextRans.BestPath);
    }

    [Fact]
    public void Decode_WithOtherLanesThanEncoded_IsRefused()
    {
        var random = new Random(21);
        byte[] symbols = new byte[10_000];
        for (int i = 0; i < symbols.Length; i++)
        {
            symbols[i] = (byte)Math.Min(254, Math.Abs((int)(Gaussian(random) * 6)));
        }
        var rans = new ContextRans();
        byte[] encoded = new byte[ContextRans.MaxEncodedLength(symbols.Length, 1)];
        foreach ((int written, int other) in new[] { (ContextRans.LegacyLanes, ContextRans.DefaultLanes), (ContextRans.DefaultLanes, ContextRans.LegacyLanes) })
        {
            int length = rans.Encode(symbols, default, 1, encoded, written);
            // The states of one lane count read as another's end elsewhere than where the encoder began: refused, never wrong.
            Assert.Throws<InvalidDataException>(() => rans.Decode(encoded.AsSpan(0, length), default, 1, new byte[symbols.Length], other));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => rans.Encode(symbols, default, 1, encoded, 16));
        Assert.Throws<ArgumentOutOfRangeException>(() => rans.Decode(encoded, default, 1, new byte[symbols.Length], 48));
    }

    [Fact]
    public void Encode_SkewedSymbols_IsWithinAFractionOfAPercentOfTheirEntropy()
    {
        var random = new Random(5);
        const int length = 2 << 20;
        byte[] symbols = new byte[length];
        for (int i = 0; i < length; i++)
        {
            symbols[i] = (byte)Math.Min(254, Math.Abs((int)(Gaussian(random) * 6)));
        }
        var rans = new ContextRans();
        byte[] encoded = new byte[ContextRans.MaxEncodedLength(length, 1)];
        int written = rans.Encode(symbols, default, 1, encoded);
        double bound = Entropy(symbols) * length / 8;
        Assert.InRange(written / bound, 1.0, 1.005);
    }

    [Fact]
    public void Encode_ContextsThatSeparateDistributions_BeatOrderZero()
    {
        var random = new Random(9);
        const int length = 1 << 18;
        byte[] context = new byte[length], symbols = new byte[length];
        for (int i = 0; i < length; i++)
        {
            context[i] = (byte)random.Next(4);
            symbols[i] = (byte)(context[i] * 60 + random.Next(4));
        }
        var rans = new ContextRans();
        byte[] encoded = new byte[ContextRans.MaxEncodedLength(length, 4)];
        int withContexts = rans.Encode(symbols, context, 4, encoded);
        int orderZero = rans.Encode(symbols, default, 1, encoded);
        // 2 bits a symbol in context, 4 without.
        Assert.InRange(withContexts, length * 2 / 8, length * 2 / 8 * 1.01 + 200);
        Assert.InRange(orderZero, length * 4 / 8, length * 4 / 8 * 1.01 + 200);
    }

    [Fact]
    public void Decode_CorruptOrTruncatedStreams_ThrowInvalidDataOrDecodeOtherSymbols_NeverCrash()
    {
        var random = new Random(13);
        const int length = 5000;
        byte[] context = new byte[length], symbols = new byte[length];
        for (int i = 0; i < length; i++)
        {
            context[i] = (byte)random.Next(16);
            symbols[i] = (byte)Math.Min(255, Math.Abs((int)(Gaussian(random) * (1 + context[i]))));
        }
        var rans = new ContextRans();
        byte[] encoded = new byte[ContextRans.MaxEncodedLength(length, 16)];
        int written = rans.Encode(symbols, context, 16, encoded);
        byte[] decoded = new byte[length];
        int detected = 0;
        for (int iteration = 0; iteration < 3000; iteration++)
        {
            byte[] corrupt = encoded.AsSpan(0, written).ToArray();
            if (iteration % 7 == 0)
            {
                corrupt = corrupt.AsSpan(0, random.Next(corrupt.Length)).ToArray();
            }
            else
            {
                corrupt[random.Next(corrupt.Length)] ^= (byte)(1 << random.Next(8));
            }
            try
            {
                rans.Decode(corrupt, context, 16, decoded);
            }
            catch (InvalidDataException)
            {
                detected++;
            }
        }
        // The final-state check catches most corruptions by itself; the chunk checksum catches the rest.
        Assert.True(detected > 2400, $"{detected} of 3000 corruptions detected");
    }

    [Fact]
    public void Decode_OtherContextCount_OrContextOutOfRange_IsRefused()
    {
        var rans = new ContextRans();
        byte[] symbols = [1, 2, 3, 4], context = [0, 1, 0, 1];
        byte[] encoded = new byte[ContextRans.MaxEncodedLength(4, 2)];
        int written = rans.Encode(symbols, context, 2, encoded);
        Assert.Throws<InvalidDataException>(() => rans.Decode(encoded.AsSpan(0, written), [0, 1, 0, 1], 3, new byte[4]));
        Assert.Throws<ArgumentException>(() => rans.Decode(encoded.AsSpan(0, written), [0, 1, 2, 1], 2, new byte[4]));
        Assert.Throws<ArgumentException>(() => rans.Encode(symbols, [0, 5, 0, 1], 2, encoded));
        Assert.Throws<ArgumentOutOfRangeException>(() => rans.Encode(symbols, default, 0, encoded));
    }

    private static IEnumerable<Func<int, byte, byte>> Distributions(Random random)
    {
        yield return (_, _) => (byte)random.Next(256);                                   // uniform: incompressible
        yield return (_, _) => 42;                                                       // one symbol: free
        yield return (_, _) => (byte)Math.Min(255, Math.Abs((int)(Gaussian(random) * 3))); // skewed, long tail
        yield return (_, c) => (byte)(c * 3 + random.Next(2));                           // set by the context
        yield return (i, _) => (byte)(i % 2 == 0 ? 0 : random.Next(256));                // half rare symbols
    }

    private static double Entropy(byte[] symbols)
    {
        var counts = new long[256];
        foreach (byte s in symbols)
        {
            counts[s]++;
        }
        return counts.Where(c => c > 0).Sum(c => -(double)c / symbols.Length * Math.Log2((double)c / symbols.Length));
    }

    private static double Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
