using DlsganOod.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DlsganOod.Core.Model;

/// <summary>
/// A DLSGAN: generator, encoder/discriminator, and the traced latent variance v (with mean μ = 0).
/// v belongs to the model: it sets the dynamic latent scale during training and the score's variances.
/// </summary>
public sealed class DlsganModel : IDisposable
{
    public DlsganModel(ModelConfig config, Preprocessing preprocessing, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(preprocessing);
        config.Validate();
        preprocessing.Validate();
        if (preprocessing.Channels != config.Channels || preprocessing.Height != config.Resolution || preprocessing.Width != config.Resolution)
            throw new InvalidDataException($"preprocessing produces {preprocessing.Height}x{preprocessing.Width}x{preprocessing.Channels} but the model takes {config.Resolution}x{config.Resolution}x{config.Channels}");
        Config = config;
        Preprocessing = preprocessing;
        Device = device ?? CPU;
        Generator = new Generator(config);
        Encoder = new Encoder(config);
        Generator.to(Device);
        Encoder.to(Device);
        LatentVariance = ones(config.LatentDim, device: Device);
        latentDim = ((double)config.LatentDim).ToScalar();
        LatentMean = zeros(config.LatentDim, device: Device);
    }

    // Scalars live in fields: an inline temporary can be finalized while libtorch still reads it.
    private readonly Scalar latentDim;

    public ModelConfig Config { get; }
    public Preprocessing Preprocessing { get; }
    public Device Device { get; }
    public Generator Generator { get; }
    public Encoder Encoder { get; }
    /// <summary>v: EMA of the squared predicted latent of generated images.</summary>
    public Tensor LatentVariance { get; private set; }
    /// <summary>μ: the latent prior's mean, 0; stored so the score never assumes it.</summary>
    public Tensor LatentMean { get; private set; }

    /// <summary>Dynamic latent scale s = sqrt(d · v / Σv).</summary>
    public Tensor LatentScale()
    {
        using var scope = NewDisposeScope();
        return (LatentVariance * latentDim / LatentVariance.sum()).sqrt().MoveToOuterDisposeScope();
    }

    public void SetLatentStatistics(float[] mean, float[] variance)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(variance);
        if (mean.Length != Config.LatentDim || variance.Length != Config.LatentDim)
            throw new InvalidDataException($"latent statistics have {mean.Length}/{variance.Length} entries, the model has {Config.LatentDim} latent dimensions");
        if (variance.Any(v => !(v > 0) || !float.IsFinite(v)))
            throw new InvalidDataException("latent variance must be finite and positive in every dimension");
        if (mean.Any(m => !float.IsFinite(m)))
            throw new InvalidDataException("latent mean must be finite");
        LatentVariance.Dispose();
        LatentMean.Dispose();
        LatentVariance = tensor(variance, device: Device);
        LatentMean = tensor(mean, device: Device);
    }

    public float[] VarianceArray() => LatentVariance.cpu().data<float>().ToArray();
    public float[] MeanArray() => LatentMean.cpu().data<float>().ToArray();

    public void Train(bool on = true)
    {
        Generator.train(on);
        Encoder.train(on);
    }

    public long ParameterCount() =>
        Generator.parameters().Sum(p => p.numel()) + Encoder.parameters().Sum(p => p.numel());

    public void Dispose()
    {
        Generator.Dispose();
        Encoder.Dispose();
        LatentVariance.Dispose();
        LatentMean.Dispose();
        latentDim.Dispose();
    }
}
