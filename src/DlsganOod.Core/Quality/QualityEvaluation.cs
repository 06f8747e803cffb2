using DlsganOod.Core.Data;
using DlsganOod.Core.Metrics;
using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;

namespace DlsganOod.Core.Quality;

/// <summary>The paper's Figure 2 figures, measured in a classifier's feature space (see <see cref="FeatureClassifier"/>).</summary>
public sealed record QualityReport(
    int Count, string FeatureNetwork, double ClassifierFid, double Precision, double Recall,
    double FakePsnr, double FakeSsim, double RealPsnr, double RealSsim, double ClassifierAccuracy)
{
    public static readonly IReadOnlyDictionary<string, double> Paper = new Dictionary<string, double>
    {
        ["FID"] = 11.2907, ["Precision"] = 0.6465, ["Recall"] = 0.5571, ["Fake PSNR"] = 25.8172,
        ["Fake SSIM"] = 0.8901, ["Real PSNR"] = 17.8839, ["Real SSIM"] = 0.6848,
    };
}

public static class QualityEvaluation
{
    /// <summary>
    /// On the test images and as many generated ones: classifier-FID, precision/recall (k = 3), and PSNR/SSIM of
    /// G(z) vs G(E(G(z))) ("fake") and x vs G(E(x)) ("real"), on [-1, 1] images with data range 2, clipped as the
    /// reference implementation does.
    /// </summary>
    public static QualityReport Run(DlsganModel model, ImageSet test, FeatureClassifier classifier, ClassifierMetadata classifierMetadata, string classifierName, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(classifierMetadata);
        var p = model.Preprocessing;
        var conformed = p.Conform(test);
        var n = conformed.Count;
        var real = p.ToModelInput(conformed, 0, n);
        var generated = new float[n * p.ModelSize];
        for (var start = 0; start < n; start += 256)
        {
            var m = Math.Min(256, n - start);
            Inference.Generate(model, m, seed + start).CopyTo(generated.AsSpan(start * p.ModelSize));
        }
        Clip(generated);
        var realFeatures = FeatureNetwork.FeaturesOfModelSpace(classifier, real, n, classifierMetadata.Preprocessing);
        var fakeFeatures = FeatureNetwork.FeaturesOfModelSpace(classifier, generated, n, classifierMetadata.Preprocessing);
        var fid = GenerativeMetrics.Fid(realFeatures, fakeFeatures, FeatureClassifier.FeatureDim);
        var (precision, recall) = GenerativeMetrics.PrecisionRecall(realFeatures, fakeFeatures, FeatureClassifier.FeatureDim);

        var (fakePsnr, fakeSsim) = ReconstructionQuality(model, generated, n);
        var (realPsnr, realSsim) = ReconstructionQuality(model, real, n);
        return new QualityReport(n, classifierName, fid, precision, recall, fakePsnr, fakeSsim, realPsnr, realSsim, classifierMetadata.ValidationAccuracy);
    }

    private static (double Psnr, double Ssim) ReconstructionQuality(DlsganModel model, float[] images, int n)
    {
        var p = model.Preprocessing;
        double psnr = 0, ssim = 0;
        for (var start = 0; start < n; start += 256)
        {
            var m = Math.Min(256, n - start);
            var batch = images.AsSpan(start * p.ModelSize, m * p.ModelSize).ToArray();
            var rec = Inference.Reconstruct(model, batch, m);
            Clip(rec);
            for (var i = 0; i < m; i++)
            {
                var a = batch.AsSpan(i * p.ModelSize, p.ModelSize);
                var b = rec.AsSpan(i * p.ModelSize, p.ModelSize);
                psnr += ImageQuality.Psnr(a, b, 2.0);
                var plane = p.Height * p.Width;
                double s = 0;
                for (var c = 0; c < p.Channels; c++) s += ImageQuality.Ssim(a.Slice(c * plane, plane), b.Slice(c * plane, plane), p.Height, p.Width, 2.0);
                ssim += s / p.Channels;
            }
        }
        return (psnr / n, ssim / n);
    }

    private static void Clip(float[] values)
    {
        for (var i = 0; i < values.Length; i++) values[i] = Math.Clamp(values[i], -1f, 1f);
    }
}
