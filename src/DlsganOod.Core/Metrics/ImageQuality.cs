namespace DlsganOod.Core.Metrics;

/// <summary>
/// PSNR and SSIM on single-channel planar images, as tf.image does them (which the reference
/// implementation uses): SSIM with an 11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, valid
/// windows only, averaged; the data range is a parameter (2.0 for images in [-1, 1]).
/// </summary>
public static class ImageQuality
{
    public static double Psnr(ReadOnlySpan<float> a, ReadOnlySpan<float> b, double dataRange)
    {
        if (a.Length != b.Length || a.Length == 0) throw new ArgumentException("Images must be non-empty and equally sized.");
        double mse = 0;
        for (var i = 0; i < a.Length; i++)
        {
            var d = (double)a[i] - b[i];
            mse += d * d;
        }
        mse /= a.Length;
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(dataRange * dataRange / mse);
    }

    public static double MeanSquaredError(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length || a.Length == 0) throw new ArgumentException("Images must be non-empty and equally sized.");
        double s = 0;
        for (var i = 0; i < a.Length; i++)
        {
            var d = (double)a[i] - b[i];
            s += d * d;
        }
        return s / a.Length;
    }

    private static readonly double[] Window = GaussianWindow(11, 1.5);

    private static double[] GaussianWindow(int size, double sigma)
    {
        var w = new double[size];
        var c = (size - 1) / 2.0;
        for (var i = 0; i < size; i++) w[i] = Math.Exp(-(i - c) * (i - c) / (2 * sigma * sigma));
        var sum = w.Sum();
        for (var i = 0; i < size; i++) w[i] /= sum;
        return w;
    }

    public static double Ssim(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int height, int width, double dataRange)
    {
        if (a.Length != height * width || b.Length != height * width) throw new ArgumentException("Images do not match the given size.");
        const int k = 11;
        if (height < k || width < k) throw new ArgumentException("SSIM needs images of at least 11×11.");
        var c1 = Math.Pow(0.01 * dataRange, 2);
        var c2 = Math.Pow(0.03 * dataRange, 2);
        double total = 0;
        var count = 0;
        for (var y = 0; y + k <= height; y++)
            for (var x = 0; x + k <= width; x++)
            {
                double ma = 0, mb = 0, saa = 0, sbb = 0, sab = 0;
                for (var i = 0; i < k; i++)
                    for (var j = 0; j < k; j++)
                    {
                        var w = Window[i] * Window[j];
                        double va = a[(y + i) * width + x + j], vb = b[(y + i) * width + x + j];
                        ma += w * va;
                        mb += w * vb;
                        saa += w * va * va;
                        sbb += w * vb * vb;
                        sab += w * va * vb;
                    }
                var varA = saa - ma * ma;
                var varB = sbb - mb * mb;
                var cov = sab - ma * mb;
                total += (2 * ma * mb + c1) * (2 * cov + c2) / ((ma * ma + mb * mb + c1) * (varA + varB + c2));
                count++;
            }
        return total / count;
    }
}
