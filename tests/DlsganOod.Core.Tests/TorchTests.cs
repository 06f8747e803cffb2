using static TorchSharp.torch;

namespace DlsganOod.Core.Tests;

/// <summary>Proves the native libtorch loads on this host (the build patches libLibTorchSharp.so where needed).</summary>
public class TorchTests
{
    [Fact]
    public void A_tensor_operation_runs()
    {
        using var a = ones(3, 3);
        using var b = a.matmul(a);
        using var s = b.sum();
        Assert.Equal(27f, s.item<float>());
    }

    [Fact]
    public void Convolution_backward_runs()
    {
        using var x = randn(2, 1, 8, 8).requires_grad_(true);
        using var w = randn(4, 1, 3, 3);
        using var y = nn.functional.conv2d(x, w, padding: [1, 1]);
        using var loss = y.square().sum();
        loss.backward();
        Assert.NotNull(x.grad);
        Assert.Equal(new long[] { 2, 1, 8, 8 }, x.grad!.shape);
    }
}
