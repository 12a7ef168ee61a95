using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Config;

public class ZipLlmConfigTests
{
    private const string Valid = """{"model_dir": "models", "storage_dir": "store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json"}""";

    [Fact]
    public void Load_RelativePaths_ResolvedAgainstConfigFolder()
    {
        using var dir = new TempDir();
        string path = dir.Write("cfg/config.json", Valid);
        var config = ZipLlmConfig.Load(path);
        string root = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Assert.Equal(Path.Combine(root, "models"), config.ModelDir);
        Assert.Equal(Path.Combine(root, "store"), config.StorageDir);
        Assert.Equal(Path.Combine(root, "test_models.txt"), config.ModelsToProcess);
        Assert.Equal(Path.Combine(root, "base_ft.json"), config.BaseFtPath);
        Assert.Equal(WorkerPool.DefaultThreads, config.Threads);
    }

    [Fact]
    public void Load_CwdElsewhere_PathsDoNotDependOnCwd()
    {
        using var dir = new TempDir();
        string path = dir.Write("a/b/config.json", Valid);
        Assert.NotEqual(dir.Combine("a", "b"), Environment.CurrentDirectory);
        var config = ZipLlmConfig.Load(path);
        Assert.Equal(dir.Combine("a", "b", "models"), config.ModelDir);
        Assert.NotEqual(Path.GetFullPath("models"), config.ModelDir);
    }

    [Fact]
    public void Load_RelativeConfigPath_ResolvesAgainstConfigFolderNotCwd()
    {
        using var dir = new TempDir();
        dir.Write("sub/config.json", """{"model_dir": "../m", "storage_dir": "s", "models_to_process": "l.txt", "base_ft_path": "x/b.json", "threads": 3}""");
        string relativeConfig = Path.GetRelativePath(Environment.CurrentDirectory, dir.Combine("sub", "config.json"));
        var config = ZipLlmConfig.Load(relativeConfig);
        Assert.Equal(dir.Combine("m"), config.ModelDir);
        Assert.Equal(dir.Combine("sub", "x", "b.json"), config.BaseFtPath);
        Assert.Equal(3, config.Threads);
        ZipLlmConfig withFive = config.WithThreads(5);
        Assert.Equal(5, withFive.Threads);
        Assert.Equal((config.ConfigPath, config.ModelDir, config.StorageDir, config.ModelsToProcess, config.BaseFtPath),
            (withFive.ConfigPath, withFive.ModelDir, withFive.StorageDir, withFive.ModelsToProcess, withFive.BaseFtPath));
    }

    [Fact]
    public void Load_AbsolutePath_KeptAsIs()
    {
        using var dir = new TempDir();
        string abs = dir.Combine("absolute-models");
        string json = Valid.Replace("\"models\"", System.Text.Json.JsonSerializer.Serialize(abs));
        var config = ZipLlmConfig.Load(dir.Write("c/config.json", json));
        Assert.Equal(abs, config.ModelDir);
    }

    [Theory]
    [InlineData("model_dir")]
    [InlineData("storage_dir")]
    [InlineData("models_to_process")]
    [InlineData("base_ft_path")]
    public void Load_MissingField_ThrowsNamingFieldAndFile(string field)
    {
        using var dir = new TempDir();
        var fields = new Dictionary<string, object> { ["model_dir"] = "m", ["storage_dir"] = "s", ["models_to_process"] = "t", ["base_ft_path"] = "b" };
        fields.Remove(field);
        string path = dir.Write("config.json", System.Text.Json.JsonSerializer.Serialize(fields));
        var ex = Assert.Throws<InvalidDataException>(() => ZipLlmConfig.Load(path));
        Assert.Contains(field, ex.Message);
        Assert.Contains(path, ex.Message);
        Assert.Contains("missing", ex.Message);
    }

    [Theory]
    [InlineData("\"model_dir\": 5", "model_dir")]
    [InlineData("\"model_dir\": null", "model_dir")]
    [InlineData("\"storage_dir\": [\"s\"]", "storage_dir")]
    [InlineData("\"base_ft_path\": true", "base_ft_path")]
    [InlineData("\"models_to_process\": \"\"", "models_to_process")]
    [InlineData("\"models_to_process\": {}", "models_to_process")]
    [InlineData("\"threads\": \"4\"", "threads")]
    [InlineData("\"threads\": 0", "threads")]
    [InlineData("\"threads\": -2", "threads")]
    [InlineData("\"threads\": 1.5", "threads")]
    [InlineData("\"threads\": 99999999999", "threads")]
    [InlineData("\"threads\": 536870912", "threads")]
    [InlineData("\"threads\": 1025", "threads")]
    [InlineData("\"thread\": 4", "thread")]
    [InlineData("\"extra\": \"x\"", "extra")]
    public void Load_WrongTypeOrUnknownField_ThrowsNamingField(string replacement, string field)
    {
        using var dir = new TempDir();
        var fields = new Dictionary<string, string>
        {
            ["model_dir"] = "\"model_dir\": \"m\"",
            ["storage_dir"] = "\"storage_dir\": \"s\"",
            ["models_to_process"] = "\"models_to_process\": \"t\"",
            ["base_ft_path"] = "\"base_ft_path\": \"b\"",
        };
        fields[field] = replacement;
        string path = dir.Write("config.json", "{" + string.Join(", ", fields.Values) + "}");
        var ex = Assert.Throws<InvalidDataException>(() => ZipLlmConfig.Load(path));
        Assert.Contains($"\"{field}\"", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void Load_DuplicateField_Throws()
    {
        using var dir = new TempDir();
        string path = dir.Write("config.json", Valid.Replace("{", "{\"model_dir\": \"x\", "));
        var ex = Assert.Throws<InvalidDataException>(() => ZipLlmConfig.Load(path));
        Assert.Contains("model_dir", ex.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"model_dir\": \"m\",}")]
    [InlineData("not json")]
    public void Load_InvalidJson_ThrowsNamingFile(string content)
    {
        using var dir = new TempDir();
        string path = dir.Write("config.json", content);
        var ex = Assert.Throws<InvalidDataException>(() => ZipLlmConfig.Load(path));
        Assert.Contains(path, ex.Message);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"config\"")]
    [InlineData("42")]
    public void Load_NotAnObject_Throws(string content)
    {
        using var dir = new TempDir();
        string path = dir.Write("config.json", content);
        var ex = Assert.Throws<InvalidDataException>(() => ZipLlmConfig.Load(path));
        Assert.Contains("object", ex.Message);
    }

    [Fact]
    public void Load_MissingFile_ThrowsFileNotFound()
    {
        using var dir = new TempDir();
        Assert.Throws<FileNotFoundException>(() => ZipLlmConfig.Load(dir.Combine("nope.json")));
    }

    [Fact]
    public void ModelFolder_OrgWithUnderscore_JoinsFirstSlash()
    {
        using var dir = new TempDir();
        var config = ZipLlmConfig.Load(dir.Write("config.json", Valid));
        Assert.Equal(Path.Combine(config.ModelDir, "my_org_model-1"), config.ModelFolder(ModelId.Parse("my_org/model-1")));
    }

    [Fact]
    public void Load_SavedWithAUtf8ByteOrderMark_Accepted()
    {
        using var dir = new TempDir();
        string path = dir.Combine("config.json");
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes(Valid)]);

        Assert.Equal(dir.Combine("store"), ZipLlmConfig.Load(path).StorageDir);
    }

    [Fact]
    public void Load_AFolder_RefusedAsNotARegularFile()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Combine("config.json"));

        // It was "config file not found", which sends the user looking for a file that is there.
        var ex = Assert.Throws<InvalidDataException>(() => ZipLlmConfig.Load(dir.Combine("config.json")));
        Assert.Contains("is a folder, not a regular file", ex.Message);
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/urandom")]
    [InlineData("/dev/null")]
    public void Load_ADevice_RefusedWithoutReadingIt(string device)
    {
        var ex = Assert.Throws<InvalidDataException>(() => ZipLlmConfig.Load(device));
        Assert.Contains($"{device}: config file is a FIFO, socket or device, not a regular file", ex.Message);
    }

    [Fact]
    public void Load_BadBucketName_InvalidDataNamingTheField()
    {
        using var dir = new TempDir();
        string path = dir.Write("config.json", Valid.Replace("\"store\"", "\"s3://Bad_Bucket/x\"", StringComparison.Ordinal));

        // A mistake in the file, not on the command line: InvalidDataException (exit 3), not ArgumentException (exit 2).
        var ex = Assert.Throws<InvalidDataException>(() => ZipLlmConfig.Load(path));
        Assert.Contains("\"storage_dir\"", ex.Message);
        Assert.Contains("\"Bad_Bucket\" is not a bucket name", ex.Message);
        Assert.DoesNotContain("(Parameter", ex.Message);
    }
}
