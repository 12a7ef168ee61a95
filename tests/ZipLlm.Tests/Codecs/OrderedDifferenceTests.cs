using System.Runtime.InteropServices;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Tests.Codecs;

public class OrderedDifferenceTests
{
    [Fact]
    public void ToOrdered_IsMonotoneOverEveryNonNanBf16Value_AndFromOrderedInvertsItEverywhere()
    {
        var values = new List<(float Value, ushort Ordered)>();
        for (int w = 0; w < 65536; w++)
        {
            ushort word = (ushort)w;
            Assert.Equal(word, OrderedDifference.FromOrdered(OrderedDifference.ToOrdered(word)));
            float value = BitConverter.UInt32BitsToSingle((uint)word << 16);
            if (!float.IsNaN(value))
            {
                values.Add((value, OrderedDifference.ToOrdered(word)));
            }
        }
        values.Sort((a, b) => a.Ordered.CompareTo(b.Ordered));
        for (int i = 1; i < values.Count; i++)
        {
            Assert.True(values[i - 1].Value <= values[i].Value, $"{values[i - 1].Value} before {values[i].Value}");
        }
        // -0 and +0 are neighbours.
        Assert.Equal(OrderedDifference.ToOrdered(0x8000) + 1, OrderedDifference.ToOrdered(0x0000));
    }

    [Theory]
    [InlineData(ElementLayout.Word16)]
    [InlineData(ElementLayout.Half)]
    internal void ForwardThenInverse_AnyWordsAgainstAnyBase_AreExact(ElementLayout layout)
    {
        var random = new Random((int)layout);
        ushort[] special = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x8001, 0x7FFF, 0xFFFF, 0x03FF, 0x0400];
        const int count = 20_000;
        var words = new ushort[count];
        var bases = new ushort[count];
        for (int i = 0; i < count; i++)
        {
            bases[i] = random.Next(4) == 0 ? special[random.Next(special.Length)] : (ushort)random.Next(65536);
            words[i] = random.Next(3) switch
            {
                0 => (ushort)(bases[i] + random.Next(-3, 4)), // near: the common case
                1 => special[random.Next(special.Length)],
                _ => (ushort)random.Next(65536),               // anything: escapes
            };
        }
        byte[] wordBytes = MemoryMarshal.AsBytes(words.AsSpan()).ToArray(), baseBytes = MemoryMarshal.AsBytes(bases.AsSpan()).ToArray();
        byte[] symbols = new byte[count], contexts = new byte[count], escapes = new byte[2 * count];
        int escaped = OrderedDifference.Forward(wordBytes, baseBytes, layout, symbols, contexts, escapes);
        Assert.InRange(escaped, 2, 2 * count);
        Assert.All(contexts, c => Assert.InRange(c, 0, OrderedDifference.ContextCount - 1));
        byte[] decodedContexts = new byte[count];
        OrderedDifference.Contexts(baseBytes, layout, decodedContexts);
        Assert.Equal(contexts, decodedContexts);
        byte[] output = new byte[2 * count];
        Assert.Equal(escaped, OrderedDifference.Inverse(symbols, escapes.AsSpan(0, escaped), baseBytes, output));
        Assert.Equal(wordBytes, output);
        Assert.Throws<InvalidDataException>(() => OrderedDifference.Inverse(symbols, escapes.AsSpan(0, escaped - 2), baseBytes, output));
    }

    [Theory]
    [InlineData(ElementLayout.Word16, 0, false)]
    [InlineData(ElementLayout.Word16, 31, false)]
    [InlineData(ElementLayout.Half, 1000, false)]
    [InlineData(ElementLayout.Word16, 4099, false)]
    [InlineData(ElementLayout.Word16, 4097, true)]
    [InlineData(ElementLayout.Half, 333, true)]
    internal void VectorKernels_MatchTheirScalarTwins(ElementLayout layout, int count, bool far)
    {
        var random = new Random(count + (int)layout);
        var words = new ushort[count];
        var bases = new ushort[count];
        for (int i = 0; i < count; i++)
        {
            bases[i] = (ushort)random.Next(65536);
            // Mostly near, with an escape in some blocks of sixteen and none in others.
            // Far: most words escape, some blocks of sixteen every word.
            words[i] = far ? (ushort)(bases[i] + random.Next(-400, 401))
                : (i / 16) % 3 == 0 && random.Next(8) == 0 ? (ushort)random.Next(65536) : (ushort)(bases[i] + random.Next(-40, 41));
        }
        byte[] w = MemoryMarshal.AsBytes(words.AsSpan()).ToArray(), b = MemoryMarshal.AsBytes(bases.AsSpan()).ToArray();
        var results = new List<(byte[] Symbols, byte[] Contexts, byte[] Escapes, byte[] Inverse, byte[] DecodedContexts)>();
        foreach (bool vectorized in new[] { false, true })
        {
            byte[] symbols = new byte[count], contexts = new byte[count], escapes = new byte[2 * count], output = new byte[2 * count], decoded = new byte[count];
            int escaped = OrderedDifference.Forward(w, b, layout, symbols, contexts, escapes, vectorized);
            Assert.Equal(escaped, OrderedDifference.Inverse(symbols, escapes.AsSpan(0, escaped), b, output, vectorized));
            OrderedDifference.Contexts(b, layout, decoded, vectorized);
            results.Add((symbols, contexts, escapes[..escaped], output, decoded));
        }
        Assert.Equal(results[0].Symbols, results[1].Symbols);
        Assert.Equal(results[0].Contexts, results[1].Contexts);
        Assert.Equal(results[0].Escapes, results[1].Escapes);
        Assert.Equal(w, results[0].Inverse);
        Assert.Equal(w, results[1].Inverse);
        Assert.Equal(results[0].Contexts, results[1].DecodedContexts);
    }

    [Fact]
    public void Forward_AWeightMovedByOneUlpAcrossZero_IsASmallSymbol()
    {
        // +0 to -0, and the smallest positive to +0: XOR flips the sign bit, the ordered difference is one step.
        byte[] words = [0x00, 0x80, 0x00, 0x00], bases = [0x00, 0x00, 0x01, 0x00];
        byte[] symbols = new byte[2], contexts = new byte[2], escapes = new byte[4];
        Assert.Equal(0, OrderedDifference.Forward(words, bases, ElementLayout.Word16, symbols, contexts, escapes));
        Assert.Equal(new byte[] { 1, 1 }, symbols);
    }
}
