using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ZipLlm.Codecs.Entropy;

// Counting the (context, symbol) pairs, and normalizing each context's counts to frequencies; the length estimate they give.
internal sealed partial class ContextRans
{
    /// <summary>
    /// The bytes <see cref="Encode(ReadOnlySpan{byte}, ReadOnlySpan{byte}, int, Span{byte}, int)"/> would write, computed from the symbol counts alone (no coding): the tables,
    /// plus each symbol's cost under its normalized frequency, rounded up. Within a few bytes of the real length.
    /// </summary>
    public long EstimateLength(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount, int lanes = DefaultLanes)
    {
        CheckArguments(symbols, contexts, contextCount);
        CheckLanes(lanes);
        Count(symbols, contexts, contextCount);
        double bits = 0;
        long tableBytes = 1 + 4 * lanes;
        Span<int> freqs = stackalloc int[256];
        for (int c = 0; c < contextCount; c++)
        {
            tableBytes++;
            ReadOnlySpan<int> counts = _counts.AsSpan(c * 256, 256);
            if (!Normalize(counts, freqs))
            {
                continue;
            }
            int present = 0;
            for (int s = 0; s < 256; s++)
            {
                if (counts[s] > 0)
                {
                    present++;
                    tableBytes += freqs[s] > 128 ? 2 : 1;
                    bits += counts[s] * (ScaleBits - Math.Log2(freqs[s]));
                }
            }
            tableBytes += present < BitmapTag ? present : BitmapBytes;
        }
        return tableBytes + (long)Math.Ceiling(bits / 16) * 2 + 2 * lanes;
    }

    /// <summary>
    /// Counts each (context, symbol) into the first contextCount * 256 counts. Four tables, taken in turn, so that a run of
    /// one symbol (most of a skewed stream) does not wait on the store of the same counter: about three times faster.
    /// </summary>
    private void Count(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount)
    {
        int size = contextCount * 256;
        Grow(ref _counts, 4 * size);
        Span<int> all = _counts.AsSpan(0, 4 * size);
        all.Clear();
        ref int t0 = ref MemoryMarshal.GetArrayDataReference(_counts);
        ref int t1 = ref Unsafe.Add(ref t0, size);
        ref int t2 = ref Unsafe.Add(ref t0, 2 * size);
        ref int t3 = ref Unsafe.Add(ref t0, 3 * size);
        ref byte symbol = ref MemoryMarshal.GetReference(symbols);
        int n = symbols.Length, i = 0;
        if (contexts.IsEmpty)
        {
            for (; i + 4 <= n; i += 4)
            {
                uint four = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref symbol, i));
                Unsafe.Add(ref t0, (int)(four & 0xFF))++;
                Unsafe.Add(ref t1, (int)((four >> 8) & 0xFF))++;
                Unsafe.Add(ref t2, (int)((four >> 16) & 0xFF))++;
                Unsafe.Add(ref t3, (int)(four >> 24))++;
            }
            for (; i < n; i++)
            {
                Unsafe.Add(ref t0, Unsafe.Add(ref symbol, i))++;
            }
        }
        else
        {
            ref byte context = ref MemoryMarshal.GetReference(contexts);
            for (; i + 4 <= n; i += 4)
            {
                uint four = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref symbol, i));
                uint where = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref context, i));
                Unsafe.Add(ref t0, (int)((where & 0xFF) << 8 | (four & 0xFF)))++;
                Unsafe.Add(ref t1, (int)((where & 0xFF00) | ((four >> 8) & 0xFF)))++;
                Unsafe.Add(ref t2, (int)(((where >> 8) & 0xFF00) | ((four >> 16) & 0xFF)))++;
                Unsafe.Add(ref t3, (int)(((where >> 16) & 0xFF00) | (four >> 24)))++;
            }
            for (; i < n; i++)
            {
                Unsafe.Add(ref t0, Unsafe.Add(ref context, i) << 8 | Unsafe.Add(ref symbol, i))++;
            }
        }
        Span<int> counts = all[..size];
        for (int table = 1; table < 4; table++)
        {
            ReadOnlySpan<int> other = all.Slice(table * size, size);
            for (int k = 0; k < size; k++)
            {
                counts[k] += other[k];
            }
        }
    }

    /// <summary>Scales <paramref name="counts"/> to frequencies summing to 2^12, every present symbol at least 1.</summary>
    /// <returns>False when the context holds no symbol.</returns>
    private static bool Normalize(ReadOnlySpan<int> counts, Span<int> freqs)
    {
        long total = 0;
        foreach (int c in counts)
        {
            total += c;
        }
        freqs.Clear();
        if (total == 0)
        {
            return false;
        }
        int sum = 0, largest = 0;
        for (int s = 0; s < 256; s++)
        {
            if (counts[s] == 0)
            {
                continue;
            }
            freqs[s] = Math.Max(1, (int)Math.Round((double)counts[s] * Scale / total));
            sum += freqs[s];
            if (freqs[s] > freqs[largest])
            {
                largest = s;
            }
        }
        if (sum <= Scale)
        {
            freqs[largest] += Scale - sum;
            return true;
        }
        // Rounding up the rare symbols overshot: take the excess from the symbols that lose least by it.
        int excess = sum - Scale;
        while (excess > 0)
        {
            int best = -1;
            double bestLoss = double.MaxValue;
            for (int s = 0; s < 256; s++)
            {
                if (freqs[s] > 1)
                {
                    double loss = counts[s] * Math.Log2((double)freqs[s] / (freqs[s] - 1));
                    if (loss < bestLoss)
                    {
                        bestLoss = loss;
                        best = s;
                    }
                }
            }
            int take = Math.Min(excess, Math.Max(1, (freqs[best] - 1) / 8));
            freqs[best] -= take;
            excess -= take;
        }
        return true;
    }
}
