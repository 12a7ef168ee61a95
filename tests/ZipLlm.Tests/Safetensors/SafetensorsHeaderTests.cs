using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Safetensors;

public class SafetensorsHeaderTests
{
    [Fact]
    public void Create_ThenParse_KeepsTensorsInOrder()
    {
        var header = SafetensorsHeader.Create([("b", DType.BF16, [2, 3]), ("a", DType.F32, [])]);
        var parsed = SafetensorsHeader.Parse(header.HeaderBytes, header.DataLength, "x");
        Assert.Equal(["b", "a"], parsed.Tensors.Select(t => t.Name));
        Assert.Equal(12 + 4, parsed.DataLength);
        Assert.Equal(0, header.HeaderBytes.Length % SafetensorsFormat.HeaderAlignment);
    }
}
