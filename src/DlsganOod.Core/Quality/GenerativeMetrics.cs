using TorchSharp;
using static TorchSharp.torch;

namespace DlsganOod.Core.Quality;

/// <summary>FID (Fréchet distance of Gaussian fits) and improved precision/recall (Kynkäänniemi et al., k-NN balls).</summary>
public static class GenerativeMetrics
{
    // Scalars held in fields (see SafeOps): inline temporaries can be finalized during the native call.
    private static readonly TorchSharp.Scalar Half = 0.5.ToScalar();

    /// <summary>‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½), with Tr((Σ₁Σ₂)^½) from the eigenvalues of Σ₁^½ Σ₂ Σ₁^½.</summary>
    public static double Fid(float[] a, float[] b, int dim)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        using var scope = NewDisposeScope();
        var (m1, c1) = MeanCov(a, dim);
        var (m2, c2) = MeanCov(b, dim);
        var diff = (m1 - m2).square().sum().item<double>();
        var (e1, v1) = linalg.eigh(c1);
        var sqrt1 = v1.matmul(diag(Model.SafeOps.ClampNonNegative(e1).sqrt())).matmul(v1.T);
        var inner = sqrt1.matmul(c2).matmul(sqrt1);
        inner = (inner + inner.T) * Half;
        var traceSqrt = Model.SafeOps.ClampNonNegative(linalg.eigvalsh(inner)).sqrt().sum().item<double>();
        var total = diff + c1.trace().item<double>() + c2.trace().item<double>() - 2 * traceSqrt;
        return Math.Max(0, total);
    }

    private static (Tensor Mean, Tensor Cov) MeanCov(float[] rows, int dim)
    {
        var n = rows.Length / dim;
        var x = tensor(rows, [n, dim]).to_type(ScalarType.Float64);
        var mean = x.mean([0]);
        var centred = x - mean;
        using var denominator = ((double)(n - 1)).ToScalar();
        return (mean, centred.T.matmul(centred) / denominator);
    }

    /// <summary>
    /// Precision: share of generated samples inside the k-NN ball of some real sample; recall: share of real
    /// samples inside the k-NN ball of some generated sample (k = 3, balls from each set's own neighbours).
    /// </summary>
    public static (double Precision, double Recall) PrecisionRecall(float[] real, float[] generated, int dim, int k = 3)
    {
        ArgumentNullException.ThrowIfNull(real);
        ArgumentNullException.ThrowIfNull(generated);
        using var scope = NewDisposeScope();
        var r = tensor(real, [real.Length / dim, dim]).to_type(ScalarType.Float64);
        var g = tensor(generated, [generated.Length / dim, dim]).to_type(ScalarType.Float64);
        var rr = cdist(r, r);
        var gg = cdist(g, g);
        // k+1-th smallest: the distance to itself (0) is the first.
        var rRadius = rr.kthvalue(k + 1, 1).values;
        var gRadius = gg.kthvalue(k + 1, 1).values;
        var gr = cdist(g, r);
        var precision = (gr <= rRadius.unsqueeze(0)).any(1).to_type(ScalarType.Float64).mean().item<double>();
        var recall = (gr.T <= gRadius.unsqueeze(0)).any(1).to_type(ScalarType.Float64).mean().item<double>();
        return (precision, recall);
    }
}
