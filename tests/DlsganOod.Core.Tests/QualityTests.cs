using DlsganOod.Core.Data;
using DlsganOod.Core.Metrics;
using DlsganOod.Core.Model;
using DlsganOod.Core.Quality;
using DlsganOod.Core.Scoring;
using FsCheck;
using FsCheck.Xunit;
using static TorchSharp.torch;

namespace DlsganOod.Core.Tests;

public class QualityTests
{
    private static float[] Gaussian(int n, int dim, int seed, double noise = 0)
    {
        var rng = new Random(seed);
        double N() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        return Enumerable.Range(0, n * dim).Select(i => (float)(N() * (1 + i % dim * 0.1) + noise * N())).ToArray();
    }

    [Fact]
    public void Fid_of_a_set_against_itself_is_zero_and_grows_with_noise()
    {
        var a = Gaussian(500, 8, 1);
        Assert.Equal(0, GenerativeMetrics.Fid(a, a, 8), 6);
        var small = GenerativeMetrics.Fid(a, a.Select((v, i) => v + 0.1f * (float)Math.Sin(i)).ToArray(), 8);
        var large = GenerativeMetrics.Fid(a, Gaussian(500, 8, 2, noise: 1.5), 8);
        Assert.True(small < large, $"{small} !< {large}");
        Assert.True(large > 1);
    }

    [Fact]
    public void Fid_matches_the_closed_form_for_shifted_identical_covariances()
    {
        // Same covariance, mean shifted by 2 in every one of 4 dimensions: FID = ‖Δμ‖² = 16.
        var a = Gaussian(2000, 4, 3);
        var b = a.Select(v => v + 2f).ToArray();
        Assert.Equal(16, GenerativeMetrics.Fid(a, b, 4), 3);
    }

    [Fact]
    public void Precision_and_recall_of_identical_sets_are_one_and_of_far_sets_zero()
    {
        var a = Gaussian(300, 5, 4);
        Assert.Equal((1.0, 1.0), GenerativeMetrics.PrecisionRecall(a, a, 5));
        var far = a.Select(v => v + 1000f).ToArray();
        Assert.Equal((0.0, 0.0), GenerativeMetrics.PrecisionRecall(a, far, 5));
    }

    [Fact]
    public void Psnr_and_ssim_match_known_values()
    {
        var a = new float[32 * 32];
        var b = Enumerable.Repeat(0.1f, 32 * 32).ToArray();
        // MSE 0.01, data range 2: 10·log10(4 / 0.01) = 26.0206 dB.
        Assert.Equal(26.0206, ImageQuality.Psnr(a, b, 2.0), 3);
        Assert.Equal(double.PositiveInfinity, ImageQuality.Psnr(a, a, 2.0));
        var img = Enumerable.Range(0, 32 * 32).Select(i => (float)Math.Sin(i * 0.37)).ToArray();
        Assert.Equal(1.0, ImageQuality.Ssim(img, img, 32, 32, 2.0), 9);
        // Constant images differing by c: SSIM = (2μaμb + C1)/(μa² + μb² + C1) with zero variances.
        var c1 = Math.Pow(0.01 * 2, 2);
        Assert.Equal(c1 / (0.01 + c1), ImageQuality.Ssim(a, b, 32, 32, 2.0), tolerance: 1e-7); // 0.1f is not exactly 0.1
        var rng = new Random(2);
        var unrelated = Enumerable.Range(0, 32 * 32).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        Assert.InRange(ImageQuality.Ssim(img, unrelated, 32, 32, 2.0), -0.3, 0.3);
        var slightlyNoisy = img.Select(v => v + (float)(0.05 * (rng.NextDouble() - 0.5))).ToArray();
        Assert.InRange(ImageQuality.Ssim(img, slightlyNoisy, 32, 32, 2.0), 0.95, 0.9999);
    }

    [Property(MaxTest = 100)]
    public bool Ssim_is_symmetric_and_at_most_one(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var a = Enumerable.Range(0, 16 * 16).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var b = Enumerable.Range(0, 16 * 16).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var ab = ImageQuality.Ssim(a, b, 16, 16, 2.0);
        return Math.Abs(ab - ImageQuality.Ssim(b, a, 16, 16, 2.0)) < 1e-12 && ab <= 1 + 1e-12;
    }

    [Fact]
    public void Mahalanobis_matches_a_direct_computation()
    {
        // Independent dimensions with variances 1, 4, 9: distance² = Σ x²/σ² (the ridge is negligible).
        var rng = new Random(5);
        var rows = Enumerable.Range(0, 20000 * 3).Select(i => (float)((rng.NextDouble() * 2 - 1) * Math.Sqrt(3) * (1 + i % 3))).ToArray();
        var fit = GaussianFit.Fit(rows, 3);
        var d = fit.SquaredMahalanobis([1f, 2f, 3f]);
        Assert.Equal(3, d, 1);
    }

    [Fact]
    public void Every_score_points_higher_for_the_out_of_distribution_case()
    {
        // Constructed features: in-distribution near the fit data, OOD far in every feature.
        var rng = new Random(6);
        ScoreFeatures Make(int n, double shift, bool ood) => new(n, 4,
            Enumerable.Range(0, n * 4).Select(_ => (float)(rng.NextDouble() - 0.5 + shift)).ToArray(),
            Enumerable.Range(0, n).Select(_ => (float)(ood ? -3 : 3 + rng.NextDouble())).ToArray(),
            Enumerable.Range(0, n).Select(_ => ood ? -500 + rng.NextDouble() : -5 + rng.NextDouble()).ToArray(),
            Enumerable.Range(0, n).Select(_ => ood ? 0.9 : 0.01 * rng.NextDouble()).ToArray(),
            Enumerable.Range(0, n).Select(_ => ood ? 0.1 : 0.95 + 0.01 * rng.NextDouble()).ToArray(),
            [Enumerable.Range(0, n * 3).Select(_ => (float)(rng.NextDouble() + shift)).ToArray()]);
        var fitData = Make(400, 0, false);
        var scores = OodScoreModel.Fit(fitData, "constructed");
        var inSet = Make(50, 0, false);
        var oodSet = Make(50, 5, true);
        foreach (var name in OodScoreModel.Names)
        {
            var i = scores.Score(name, inSet);
            var o = scores.Score(name, oodSet);
            Assert.True(o.Min() > i.Max(), $"{name}: OOD scores should all exceed in-distribution ones");
        }
    }

    [Fact]
    public void Score_statistics_round_trip_through_the_checkpoint_files()
    {
        using var dir = new TempDir();
        manual_seed(3);
        using var model = new DlsganModel(new ModelConfig { Preset = "test", BaseWidth = 2, LatentDim = 8 }, Preprocessing.Mnist);
        var images = Synthetic.Rings(60);
        var features = ScoreFeatures.Compute(model, images);
        var scores = OodScoreModel.Fit(features, images.Fingerprint());
        scores.Save(dir.Path);
        var back = OodScoreModel.Load(dir.Path)!;
        foreach (var name in OodScoreModel.Names)
            Assert.Equal(scores.Score(name, features), back.Score(name, features));
        File.WriteAllBytes(Path.Combine(dir.Path, OodScoreModel.GaussianFile), [1, 0, 0, 0, 9]);
        Assert.Throws<CheckpointException>(() => OodScoreModel.Load(dir.Path));
    }

    [Fact]
    public void Roc_curve_runs_from_origin_to_one_and_its_area_is_the_auroc()
    {
        double[] inScores = [0.1, 0.4, 0.35, 0.8];
        double[] ood = [0.9, 0.5, 0.45, 0.2];
        var (fpr, tpr) = OodMetrics.RocCurve(inScores, ood);
        Assert.Equal((0.0, 0.0), (fpr[0], tpr[0]));
        Assert.Equal((1.0, 1.0), (fpr[^1], tpr[^1]));
        var area = 0.0;
        for (var i = 1; i < fpr.Length; i++) area += (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2;
        Assert.Equal(OodMetrics.Auroc(inScores, ood), area, 12);
    }
}
