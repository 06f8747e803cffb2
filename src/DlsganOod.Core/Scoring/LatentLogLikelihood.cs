using TorchSharp;
using static TorchSharp.torch;

namespace DlsganOod.Core.Scoring;

/// <summary>
/// The paper's OOD score: log-likelihood of the predicted latent under the diagonal Gaussian N(μ, v),
/// Σᵢ log N(zᵢ; μᵢ, vᵢ) = −½ Σᵢ [log(2π vᵢ) + (zᵢ − μᵢ)² / vᵢ]. Always in log space: the density of a
/// 256-dimensional point underflows double precision long before its log does.
/// </summary>
public static class LatentLogLikelihood
{
    public const double LogTwoPi = 1.8378770664093453;
    // Static Scalars: an inline temporary can be finalized while libtorch still reads it.
    private static readonly Scalar TwoPi = (2 * Math.PI).ToScalar();
    private static readonly Scalar MinusHalf = (-0.5).ToScalar();

    public static double Compute(ReadOnlySpan<float> latent, ReadOnlySpan<float> mean, ReadOnlySpan<float> variance)
    {
        if (latent.Length != mean.Length || latent.Length != variance.Length)
            throw new ArgumentException($"Latent ({latent.Length}), mean ({mean.Length}) and variance ({variance.Length}) differ in length.");
        var sum = 0.0;
        for (var i = 0; i < latent.Length; i++)
        {
            var v = (double)variance[i];
            var d = latent[i] - (double)mean[i];
            sum += LogTwoPi + Math.Log(v) + d * d / v;
        }
        return -0.5 * sum;
    }

    /// <summary>Row-wise log-likelihood of a batch of latents [N, d]; computed in float64.</summary>
    public static Tensor Compute(Tensor latents, Tensor mean, Tensor variance)
    {
        ArgumentNullException.ThrowIfNull(latents);
        using var scope = NewDisposeScope();
        var z = latents.to_type(ScalarType.Float64);
        var v = variance.to_type(ScalarType.Float64);
        var d = z - mean.to_type(ScalarType.Float64);
        var perDim = (v * TwoPi).log() + d * d / v;
        return (perDim.sum(1) * MinusHalf).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The dimensions that make a latent least likely: |zᵢ − μᵢ| / √vᵢ, largest first. Evidence for alerts.
    /// </summary>
    public static (int Dimension, double Deviation)[] TopDeviations(ReadOnlySpan<float> latent, ReadOnlySpan<float> mean, ReadOnlySpan<float> variance, int count)
    {
        var deviations = new (int, double)[latent.Length];
        for (var i = 0; i < latent.Length; i++)
            deviations[i] = (i, Math.Abs(latent[i] - mean[i]) / Math.Sqrt(variance[i]));
        return deviations.OrderByDescending(d => d.Item2).ThenBy(d => d.Item1).Take(count).ToArray();
    }
}
