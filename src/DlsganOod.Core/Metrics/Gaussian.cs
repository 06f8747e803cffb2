namespace DlsganOod.Core.Metrics;

/// <summary>
/// A full-covariance Gaussian fitted to vectors: mean, covariance with a small ridge (so few samples in
/// high dimension stay invertible), and the squared Mahalanobis distance via a Cholesky factor.
/// </summary>
public sealed class GaussianFit
{
    private GaussianFit(double[] mean, double[] cholesky, int dim)
    {
        Mean = mean;
        Cholesky = cholesky;
        Dimension = dim;
    }

    public double[] Mean { get; }
    /// <summary>Lower-triangular L with LLᵀ = Σ (row-major d × d).</summary>
    public double[] Cholesky { get; }
    public int Dimension { get; }

    public static GaussianFit Fit(ReadOnlySpan<float> rows, int dim, double ridge = 1e-6)
    {
        if (dim < 1 || rows.Length % dim != 0 || rows.Length / dim < 2) throw new ArgumentException("Need at least two vectors of the given dimension.");
        var n = rows.Length / dim;
        var mean = new double[dim];
        for (var r = 0; r < n; r++)
            for (var i = 0; i < dim; i++) mean[i] += rows[r * dim + i];
        for (var i = 0; i < dim; i++) mean[i] /= n;
        var cov = new double[dim * dim];
        var centred = new double[dim];
        for (var r = 0; r < n; r++)
        {
            for (var i = 0; i < dim; i++) centred[i] = rows[r * dim + i] - mean[i];
            for (var i = 0; i < dim; i++)
            {
                var ci = centred[i];
                for (var j = 0; j <= i; j++) cov[i * dim + j] += ci * centred[j];
            }
        }
        var trace = 0.0;
        for (var i = 0; i < dim; i++)
            for (var j = 0; j <= i; j++)
            {
                cov[i * dim + j] /= n - 1;
                cov[j * dim + i] = cov[i * dim + j];
                if (i == j) trace += cov[i * dim + i];
            }
        // Ridge relative to the average variance: scale-free regularisation.
        var lambda = ridge * Math.Max(trace / dim, 1e-12);
        for (var i = 0; i < dim; i++) cov[i * dim + i] += lambda;
        return new GaussianFit(mean, CholeskyFactor(cov, dim), dim);
    }

    public static GaussianFit FromParts(double[] mean, double[] cholesky)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(cholesky);
        if (cholesky.Length != mean.Length * mean.Length) throw new ArgumentException("Cholesky factor does not match the mean's dimension.");
        return new GaussianFit(mean, cholesky, mean.Length);
    }

    /// <summary>(x − μ)ᵀ Σ⁻¹ (x − μ), by solving L y = x − μ: ‖y‖².</summary>
    public double SquaredMahalanobis(ReadOnlySpan<float> x)
    {
        if (x.Length != Dimension) throw new ArgumentException($"Vector has {x.Length} entries, expected {Dimension}.");
        Span<double> y = Dimension <= 1024 ? stackalloc double[Dimension] : new double[Dimension];
        var sum = 0.0;
        for (var i = 0; i < Dimension; i++)
        {
            var v = x[i] - Mean[i];
            for (var j = 0; j < i; j++) v -= Cholesky[i * Dimension + j] * y[j];
            y[i] = v / Cholesky[i * Dimension + i];
            sum += y[i] * y[i];
        }
        return sum;
    }

    private static double[] CholeskyFactor(double[] a, int n)
    {
        var l = new double[n * n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j <= i; j++)
            {
                var s = a[i * n + j];
                for (var k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
                if (i == j)
                {
                    if (s <= 0) throw new InvalidOperationException("Covariance is not positive definite even with the ridge.");
                    l[i * n + i] = Math.Sqrt(s);
                }
                else l[i * n + j] = s / l[j * n + j];
            }
        return l;
    }
}
