using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DlsganOod.Core.Model;

/// <summary>
/// Convolution with equalized learning rate (Karras et al.): weights are stored N(0, 1) and scaled by the
/// He constant at run time, so Adam sees every layer at the same scale. Same padding.
/// </summary>
public sealed class EqConv2d : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    // Held in a field: a Scalar created inline can be finalized while libtorch still reads it.
    private readonly Scalar scale;
    private readonly long padding;

    public EqConv2d(string name, long inChannels, long outChannels, long kernel) : base(name)
    {
        weight = new Parameter(randn(outChannels, inChannels, kernel, kernel));
        bias = new Parameter(zeros(outChannels));
        scale = Math.Sqrt(2.0 / (inChannels * kernel * kernel)).ToScalar();
        padding = kernel / 2;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var w = weight * scale;
        return nn.functional.conv2d(input, w, bias, padding: [padding, padding]);
    }
}

/// <summary>Dense layer with equalized learning rate.</summary>
public sealed class EqLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly Scalar scale;

    public EqLinear(string name, long inFeatures, long outFeatures) : base(name)
    {
        weight = new Parameter(randn(outFeatures, inFeatures));
        bias = new Parameter(zeros(outFeatures));
        scale = Math.Sqrt(2.0 / inFeatures).ToScalar();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var w = weight * scale;
        return nn.functional.linear(input, w, bias);
    }
}

/// <summary>
/// Resampling with the [1, 3, 3, 1] binomial filter (as in StyleGAN and the reference DLSGAN):
/// down = blur then stride 2; up = zero insertion then blur with gain 4.
/// </summary>
public sealed class BlurResample : nn.Module<Tensor, Tensor>
{
    private readonly bool up;
    private readonly Tensor kernel;

    public BlurResample(string name, bool up) : base(name)
    {
        this.up = up;
        using var k1 = tensor(new float[] { 1, 3, 3, 1 });
        using var k2 = outer(k1, k1);
        using var normalized = k2 / k2.sum();
        using var gain = (up ? 4.0 : 1.0).ToScalar();
        using var scaled = normalized * gain;
        kernel = scaled.reshape(1, 1, 4, 4);
        register_buffer("kernel", kernel, persistent: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        var channels = input.shape[1];
        using var scope = NewDisposeScope();
        var k = kernel.expand(channels, 1, 4, 4);
        Tensor result;
        if (up)
        {
            var (n, h, w) = (input.shape[0], input.shape[2], input.shape[3]);
            // Zero insertion: each pixel becomes the top-left of a 2×2 cell.
            var spread = nn.functional.pad(input.reshape(n, channels, h, 1, w, 1), [0, 1, 0, 0, 0, 1]).reshape(n, channels, 2 * h, 2 * w);
            var padded = nn.functional.pad(spread, [2, 1, 2, 1]);
            result = nn.functional.conv2d(padded, k, groups: channels);
        }
        else
        {
            result = nn.functional.conv2d(input, k, strides: [2, 2], padding: [1, 1], groups: channels);
        }
        return result.MoveToOuterDisposeScope();
    }
}
