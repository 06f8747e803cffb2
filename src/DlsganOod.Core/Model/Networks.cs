using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DlsganOod.Core.Model;

/// <summary>G: latent (already multiplied by the dynamic latent scale) → image in [-1, 1] space (unbounded).</summary>
public sealed class Generator : nn.Module<Tensor, Tensor>
{
    private readonly EqLinear dense;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> blocks = new();
    private readonly EqConv2d toImage;
    private readonly int topWidth;

    public Generator(ModelConfig config) : base("generator")
    {
        ArgumentNullException.ThrowIfNull(config);
        topWidth = config.TopWidth;
        dense = new EqLinear("dense", config.LatentDim, topWidth * 16);
        var inChannels = (long)topWidth;
        var level = 0;
        foreach (var width in config.GeneratorWidths())
        {
            blocks.Add(new BlurResample($"up{level}", up: true));
            blocks.Add(new EqConv2d($"conv{level}a", inChannels, width, 3));
            blocks.Add(new EqConv2d($"conv{level}b", width, width, 3));
            inChannels = width;
            level++;
        }
        toImage = new EqConv2d("to_image", inChannels, config.Channels, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor latent)
    {
        using var scope = NewDisposeScope();
        var x = SafeOps.LeakyRelu(dense.forward(latent)).reshape(latent.shape[0], topWidth, 4, 4);
        foreach (var block in blocks)
        {
            x = block.forward(x);
            if (block is EqConv2d) x = SafeOps.LeakyRelu(x);
        }
        return toImage.forward(x).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// E/D: one trunk, two heads: the adversarial logit (discriminator) and the predicted latent (encoder).
/// </summary>
public sealed class Encoder : nn.Module<Tensor, (Tensor Adversarial, Tensor Latent)>
{
    private readonly ModuleList<nn.Module<Tensor, Tensor>> trunk = new();
    private readonly EqConv2d final;
    private readonly EqLinear adversarialHead;
    private readonly EqLinear latentHead;

    public Encoder(ModelConfig config) : base("encoder")
    {
        ArgumentNullException.ThrowIfNull(config);
        long inChannels = config.Channels;
        var level = 0;
        foreach (var width in config.EncoderWidths())
        {
            var widened = Math.Min(2 * width, 4 * config.BaseWidth);
            trunk.Add(new EqConv2d($"conv{level}a", inChannels, width, 3));
            trunk.Add(new EqConv2d($"conv{level}b", width, widened, 3));
            trunk.Add(new BlurResample($"down{level}", up: false));
            inChannels = widened;
            level++;
        }
        final = new EqConv2d("final", inChannels, config.TopWidth, 3);
        var features = (long)config.TopWidth * 16;
        adversarialHead = new EqLinear("adversarial", features, 1);
        latentHead = new EqLinear("latent", features, config.LatentDim);
        RegisterComponents();
    }

    public override (Tensor Adversarial, Tensor Latent) forward(Tensor image) => Forward(image, null);

    /// <summary>
    /// Also returns, per resolution level and for the final conv, the per-channel spatial mean and standard
    /// deviation of the activations ([N, 2C] each): texture statistics for feature-space OOD scores.
    /// </summary>
    public (Tensor Adversarial, Tensor Latent, Tensor[] LevelStatistics) ForwardWithFeatures(Tensor image)
    {
        var stats = new List<Tensor>();
        var (a, z) = Forward(image, stats);
        return (a, z, stats.ToArray());
    }

    private (Tensor Adversarial, Tensor Latent) Forward(Tensor image, List<Tensor>? levelStatistics)
    {
        using var scope = NewDisposeScope();
        var x = image;
        foreach (var layer in trunk)
        {
            // Statistics are taken just before each downsampling: the level's full-resolution features.
            if (levelStatistics is not null && layer is BlurResample) levelStatistics.Add(PooledStatistics(x).MoveToOuterDisposeScope());
            x = layer.forward(x);
            if (layer is EqConv2d) x = SafeOps.LeakyRelu(x);
        }
        x = SafeOps.LeakyRelu(final.forward(x));
        if (levelStatistics is not null) levelStatistics.Add(PooledStatistics(x).MoveToOuterDisposeScope());
        x = x.flatten(1);
        var adversarial = adversarialHead.forward(x).squeeze(1);
        var latent = latentHead.forward(x);
        return (adversarial.MoveToOuterDisposeScope(), latent.MoveToOuterDisposeScope());
    }

    private static Tensor PooledStatistics(Tensor x)
    {
        var flat = x.flatten(2);
        return cat([flat.mean([2]), flat.std(2)], 1);
    }
}
