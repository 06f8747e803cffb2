using DlsganOod.Core.Data;
using DlsganOod.Core.Model;
using static TorchSharp.torch;

namespace DlsganOod.Core.Scoring;

/// <summary>Encoder outputs for a set of images: latents (row-major N × d), adversarial logits, log-likelihoods.</summary>
public sealed record Encodings(int Count, int LatentDim, float[] Latents, float[] Adversarial, double[] LogLikelihood)
{
    public ReadOnlySpan<float> Latent(int index) => Latents.AsSpan(index * LatentDim, LatentDim);
}

/// <summary>
/// Batched inference: eval mode, inference_mode, one dispose scope per batch so no tensor outlives it.
/// </summary>
public static class Inference
{
    public const int DefaultBatchSize = 256;

    public static Encodings Encode(DlsganModel model, ImageSet images, int batchSize = DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(images);
        var conformed = model.Preprocessing.Conform(images);
        var d = model.Config.LatentDim;
        var latents = new float[(long)conformed.Count * d];
        var adversarial = new float[conformed.Count];
        var ll = new double[conformed.Count];
        for (var start = 0; start < conformed.Count; start += batchSize)
        {
            var n = Math.Min(batchSize, conformed.Count - start);
            var input = model.Preprocessing.ToModelInput(conformed, start, n);
            var batch = EncodeBatch(model, input, n);
            batch.Latents.CopyTo(latents.AsSpan(start * d));
            batch.Adversarial.CopyTo(adversarial.AsSpan(start));
            batch.LogLikelihood.CopyTo(ll.AsSpan(start));
        }
        return new Encodings(conformed.Count, d, latents, adversarial, ll);
    }

    /// <summary>One batch of planar model input (N × C × H × W floats) through the encoder.</summary>
    public static Encodings EncodeBatch(DlsganModel model, float[] modelInput, int count)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(modelInput);
        var p = model.Preprocessing;
        model.Encoder.eval();
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var x = tensor(modelInput, [count, p.Channels, p.Height, p.Width], device: model.Device);
        var (adv, latent) = model.Encoder.forward(x);
        var ll = LatentLogLikelihood.Compute(latent, model.LatentMean, model.LatentVariance);
        return new Encodings(count, model.Config.LatentDim,
            latent.cpu().data<float>().ToArray(), adv.cpu().data<float>().ToArray(), ll.cpu().data<double>().ToArray());
    }

    /// <summary>G(z ⊙ s) for standard-normal z; images in model space (N × C × H × W).</summary>
    public static float[] Generate(DlsganModel model, int count, int seed)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Generator.eval();
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        using var gen = new TorchSharp.torch.Generator((ulong)seed, model.Device);
        var z = randn(count, model.Config.LatentDim, generator: gen, device: model.Device);
        return model.Generator.forward(z * model.LatentScale()).cpu().data<float>().ToArray();
    }

    /// <summary>G(E(x) ⊙ s): reconstructions in model space, for pictures and reconstruction scores.</summary>
    public static float[] Reconstruct(DlsganModel model, float[] modelInput, int count)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(modelInput);
        var p = model.Preprocessing;
        model.Encoder.eval();
        model.Generator.eval();
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var x = tensor(modelInput, [count, p.Channels, p.Height, p.Width], device: model.Device);
        var (_, latent) = model.Encoder.forward(x);
        return model.Generator.forward(latent * model.LatentScale()).cpu().data<float>().ToArray();
    }
}
