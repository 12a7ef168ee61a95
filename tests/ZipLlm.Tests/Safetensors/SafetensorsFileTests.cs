using ZipLlm.Safetensors;
using ZipLlm.Tests.TestSupport;
using static ZipLlm.Tests.Safetensors.SafetensorsBytes;

namespace ZipLlm.Tests.Safetensors;

public class SafetensorsFileTests
{
    // a: F32 [3] at [0, 12); b: U8 [5] at [12, 17); e: empty at [17, 17); c: BF16 [2, 2] at [17, 25).
    private static readonly string s_json = "{"
        + Entry("a", "F32", "[3]", 0, 12) + ","
        + Entry("b", "U8", "[5]", 12, 17) + ","
        + Entry("e", "F16", "[0,3]", 17, 17) + ","
        + Entry("c", "BF16", "[2,2]", 17, 25) + "}  ";

    private static readonly byte[] s_file = File(s_json, 25);

    private static int DataStart => s_file.Length - 25;

    private static TensorInfo Tensor(SafetensorsFile file, string name) => file.Header.Tensors.Single(t => t.Name == name);

    [Fact]
    public void Open_ValidFile_ExposesPathLengthAndHeader()
    {
        using var dir = new TempDir();
        string path = WriteTemp(dir, FileName, s_file);

        using SafetensorsFile file = SafetensorsFile.Open(path);

        Assert.Equal(path, file.Path);
        Assert.Equal(s_file.Length, file.Length);
        Assert.Equal(s_file.Length, file.Header.FileLength);
        Assert.Equal(DataStart, file.Header.DataOffset);
        Assert.Equal(["a", "b", "e", "c"], file.Header.Tensors.Select(t => t.Name));
    }

    [Theory]
    [InlineData("a", 0, 12)]
    [InlineData("a", 4, 4)]
    [InlineData("a", 11, 1)]
    [InlineData("b", 1, 3)]
    [InlineData("b", 0, 5)]
    [InlineData("c", 2, 6)]
    [InlineData("c", 8, 0)]
    [InlineData("e", 0, 0)]
    public void ReadTensor_OffsetAndPartialLength_ReadsExactlyThatSlice(string name, long offset, int length)
    {
        using var dir = new TempDir();
        using SafetensorsFile file = SafetensorsFile.Open(WriteTemp(dir, FileName, s_file));
        TensorInfo tensor = Tensor(file, name);
        var buffer = new byte[length + 2];
        buffer[0] = buffer[^1] = 0xEE;

        file.ReadTensor(tensor, offset, buffer.AsSpan(1, length));

        long start = DataStart + tensor.Begin + offset;
        Assert.Equal(s_file[(int)start..(int)(start + length)], buffer[1..^1]);
        Assert.Equal(0xEE, buffer[0]);
        Assert.Equal(0xEE, buffer[^1]);
    }

    [Theory]
    [InlineData("a", -1, 1)]
    [InlineData("a", 0, 13)]
    [InlineData("a", 12, 1)]
    [InlineData("a", 13, 0)]
    [InlineData("a", 11, 2)]
    [InlineData("e", 0, 1)]
    [InlineData("e", 1, 0)]
    [InlineData("b", long.MaxValue, 1)]
    [InlineData("b", long.MaxValue, 0)]
    [InlineData("b", long.MinValue, 1)]
    public void ReadTensor_RangeOutsideTensor_ThrowsArgumentOutOfRange(string name, long offset, int length)
    {
        using var dir = new TempDir();
        using SafetensorsFile file = SafetensorsFile.Open(WriteTemp(dir, FileName, s_file));
        TensorInfo tensor = Tensor(file, name);

        Assert.Throws<ArgumentOutOfRangeException>(() => file.ReadTensor(tensor, offset, new byte[length]));
    }

    [Fact]
    public void ReadTensor_TensorOfAnotherFileOutsideThisData_ThrowsArgumentOutOfRange()
    {
        using var dir = new TempDir();
        using SafetensorsFile file = SafetensorsFile.Open(WriteTemp(dir, FileName, s_file));
        var foreign = new TensorInfo("x", DType.U8, [8], 20, 28);

        Assert.Throws<ArgumentOutOfRangeException>(() => file.ReadTensor(foreign, 0, new byte[8]));
    }

    [Theory]
    [InlineData(-1, 1)]
    [InlineData(-8, 8)]
    [InlineData(0, 26)]
    [InlineData(25, 1)]
    [InlineData(26, 0)]
    [InlineData(long.MaxValue, 1)]
    public void ReadData_RangeOutsideDataSection_ThrowsArgumentOutOfRange(long offset, int length)
    {
        using var dir = new TempDir();
        using SafetensorsFile file = SafetensorsFile.Open(WriteTemp(dir, FileName, s_file));

        Assert.Throws<ArgumentOutOfRangeException>(() => file.ReadData(offset, new byte[length]));
    }

    [Fact]
    public void ReadData_WholeDataSection_ReadsIt()
    {
        using var dir = new TempDir();
        using SafetensorsFile file = SafetensorsFile.Open(WriteTemp(dir, FileName, s_file));
        var data = new byte[25];

        file.ReadData(0, data);

        Assert.Equal(s_file[DataStart..], data);
    }

    [Fact]
    public void ReadTensor_FileTruncatedAfterOpen_ThrowsEndOfStream()
    {
        using var dir = new TempDir();
        string path = WriteTemp(dir, FileName, s_file);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        using (var writer = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            writer.SetLength(DataStart + 14);
        }
        var buffer = new byte[8];

        file.ReadTensor(Tensor(file, "a"), 0, buffer);       // still wholly present
        var ex = Assert.Throws<EndOfStreamException>(() => file.ReadTensor(Tensor(file, "c"), 0, buffer));

        Assert.Contains(path, ex.Message);
        Assert.Contains("ended", ex.Message);
    }

    [Fact]
    public void ReadTensor_ManyThreadsAtOnce_EachGetsItsOwnBytes()
    {
        using var dir = new TempDir();
        using SafetensorsFile file = SafetensorsFile.Open(WriteTemp(dir, FileName, s_file));
        TensorInfo[] tensors = [.. file.Header.Tensors];
        int failures = 0;

        Parallel.For(0, 2_000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            TensorInfo t = tensors[i % tensors.Length];
            long offset = t.Length == 0 ? 0 : i % t.Length;
            var buffer = new byte[t.Length - offset];
            file.ReadTensor(t, offset, buffer);
            long start = DataStart + t.Begin + offset;
            if (!buffer.AsSpan().SequenceEqual(s_file.AsSpan((int)start, buffer.Length)))
            {
                Interlocked.Increment(ref failures);
            }
        });

        Assert.Equal(0, failures);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(30)]
    public void Open_TruncatedFile_ThrowsEndOfStreamNamingPath(int length)
    {
        using var dir = new TempDir();
        string path = WriteTemp(dir, FileName, s_file[..length]);

        var ex = Assert.Throws<EndOfStreamException>(() => SafetensorsFile.Open(path));

        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void Open_TruncatedInsideData_ThrowsInvalidDataNamingPath()
    {
        // The header is whole but promises more data than the file holds.
        using var dir = new TempDir();
        string path = WriteTemp(dir, FileName, s_file[..^1]);

        var ex = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));

        Assert.Contains(path, ex.Message);
        Assert.Contains("past", ex.Message);
    }

    [Fact]
    public void Open_GitLfsPointer_ThrowsInvalidDataNamingPathAndLfs()
    {
        using var dir = new TempDir();
        string path = WriteTemp(dir, FileName, "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 123\n"u8);

        var ex = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));

        Assert.Contains(path, ex.Message);
        Assert.Contains("LFS", ex.Message);
    }

    [Fact]
    public void Open_MissingFile_ThrowsFileNotFound()
    {
        using var dir = new TempDir();

        Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(dir.Combine("absent.safetensors")));
    }

    [Fact]
    public void Open_Refused_ReleasesTheFile()
    {
        using var dir = new TempDir();
        string path = WriteTemp(dir, FileName, File("{\"w\":1}", 0));
        Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));

        // A leaked handle would hold a shared lock and make an exclusive open fail.
        using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
        }
        System.IO.File.Delete(path);
        Assert.False(System.IO.File.Exists(path));
    }

    [Fact]
    public void Dispose_ReleasesTheFile()
    {
        using var dir = new TempDir();
        string path = WriteTemp(dir, FileName, s_file);
        SafetensorsFile file = SafetensorsFile.Open(path);

        file.Dispose();

        using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
        }
        Assert.Throws<ObjectDisposedException>(() => file.ReadData(0, new byte[1]));
    }
}
