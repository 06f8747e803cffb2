using System.Text.Json;
using DlsganOod.Core.Data;
using DlsganOod.Core.Metrics;
using DlsganOod.Core.Model;
using static TorchSharp.torch;

namespace DlsganOod.Core.Scoring;

/// <summary>Everything the scores need, from one pass of a batch through E and G.</summary>
/// <param name="LevelFeatures">Per encoder level: per-channel spatial mean and std of activations, row-major N × D.</param>
public sealed record ScoreFeatures(int Count, int LatentDim, float[] Latents, float[] Adversarial, double[] LogLikelihood,
    double[] ReconstructionError, double[] ReconstructionSsim, float[][] LevelFeatures)
{
    public ReadOnlySpan<float> Latent(int i) => Latents.AsSpan(i * LatentDim, LatentDim);

    public static ScoreFeatures Compute(DlsganModel model, ImageSet images, int batchSize = Inference.DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(images);
        var p = model.Preprocessing;
        var conformed = p.Conform(images);
        var parts = new List<ScoreFeatures>();
        for (var start = 0; start < conformed.Count; start += batchSize)
        {
            var n = Math.Min(batchSize, conformed.Count - start);
            parts.Add(ComputeBatch(model, p.ToModelInput(conformed, start, n), n));
        }
        return Concat(parts, model.Config.LatentDim);
    }

    /// <summary>Encoder and (unless <paramref name="reconstruct"/> is false) reconstruction of one batch, in one inference scope.</summary>
    /// <param name="reconstruct">False skips G(E(x)) and SSIM (their features are NaN): the encoder-only scores do not need them.</param>
    public static ScoreFeatures ComputeBatch(DlsganModel model, float[] modelInput, int count, bool reconstruct = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(modelInput);
        var p = model.Preprocessing;
        model.Encoder.eval();
        model.Generator.eval();
        float[] latents, adversarial, reconstructed;
        float[][] levels;
        double[] ll;
        using (inference_mode())
        using (var scope = NewDisposeScope())
        {
            var x = tensor(modelInput, [count, p.Channels, p.Height, p.Width], device: model.Device);
            var (adv, z, stats) = model.Encoder.ForwardWithFeatures(x);
            levels = stats.Select(t => t.cpu().data<float>().ToArray()).ToArray();
            latents = z.cpu().data<float>().ToArray();
            adversarial = adv.cpu().data<float>().ToArray();
            reconstructed = reconstruct ? model.Generator.forward(z * model.LatentScale()).cpu().data<float>().ToArray() : [];
            ll = LatentLogLikelihood.Compute(z, model.LatentMean, model.LatentVariance).cpu().data<double>().ToArray();
        }
        var size = p.ModelSize;
        var mse = new double[count];
        var ssim = new double[count];
        for (var i = 0; i < count && !reconstruct; i++) (mse[i], ssim[i]) = (double.NaN, double.NaN);
        for (var i = 0; i < count && reconstruct; i++)
        {
            var a = modelInput.AsSpan(i * size, size);
            var b = reconstructed.AsSpan(i * size, size);
            mse[i] = ImageQuality.MeanSquaredError(a, b);
            // SSIM per channel plane, averaged; data range 2.0 for [-1, 1] images as in the reference.
            var plane = p.Height * p.Width;
            double s = 0;
            for (var c = 0; c < p.Channels; c++)
                s += ImageQuality.Ssim(a.Slice(c * plane, plane), b.Slice(c * plane, plane), p.Height, p.Width, 2.0);
            ssim[i] = s / p.Channels;
        }
        return new ScoreFeatures(count, model.Config.LatentDim, latents, adversarial, ll, mse, ssim, levels);
    }

    public static ScoreFeatures Concat(IReadOnlyList<ScoreFeatures> parts, int latentDim)
    {
        ArgumentNullException.ThrowIfNull(parts);
        return new ScoreFeatures(parts.Sum(p => p.Count), latentDim,
            parts.SelectMany(p => p.Latents).ToArray(), parts.SelectMany(p => p.Adversarial).ToArray(),
            parts.SelectMany(p => p.LogLikelihood).ToArray(), parts.SelectMany(p => p.ReconstructionError).ToArray(),
            parts.SelectMany(p => p.ReconstructionSsim).ToArray(),
            Enumerable.Range(0, parts[0].LevelFeatures.Length).Select(l => parts.SelectMany(p => p.LevelFeatures[l]).ToArray()).ToArray());
    }
}

/// <summary>
/// The OOD scores, all oriented "higher = more OOD": the paper's latent log-likelihood and the scores
/// beyond it, with the in-distribution statistics they need (fitted on real in-distribution images).
/// </summary>
public sealed class OodScoreModel
{
    public const string LogLikelihood = "log_likelihood";
    public const string Typicality = "typicality";
    public const string Mahalanobis = "mahalanobis";
    public const string Reconstruction = "reconstruction";
    public const string ReconstructionSsim = "reconstruction_ssim";
    public const string Adversarial = "adversarial";
    public const string EncoderFeatures = "encoder_features";
    public const string Fused = "fused";
    public static readonly string[] Names = [LogLikelihood, Typicality, Mahalanobis, Reconstruction, ReconstructionSsim, Adversarial, EncoderFeatures, Fused];
    private static readonly string[] FusedParts = [LogLikelihood, Typicality, Mahalanobis, Reconstruction, ReconstructionSsim, Adversarial, EncoderFeatures];

    public const string StatsFile = "scores.json";
    public const string GaussianFile = "scores-gaussian.bin";

    public sealed record Statistics
    {
        public int Count { get; init; }
        public string DataFingerprint { get; init; } = "";
        public double MeanLogLikelihood { get; init; }
        /// <summary>Mean and standard deviation of each component score on the fit data, for the fused score.</summary>
        public Dictionary<string, double[]> Standardisation { get; init; } = new();
        /// <summary>Mean and standard deviation of each encoder level's Mahalanobis distance on the fit data.</summary>
        public double[][] LevelStandardisation { get; init; } = [];
    }

    private OodScoreModel(Statistics stats, GaussianFit gaussian, GaussianFit[] levels)
    {
        Stats = stats;
        Gaussian = gaussian;
        Levels = levels;
    }

    public Statistics Stats { get; }
    /// <summary>Gaussian of the predicted latents E(x) of real in-distribution images.</summary>
    public GaussianFit Gaussian { get; }
    /// <summary>Gaussians of the pooled encoder activations, one per level.</summary>
    public GaussianFit[] Levels { get; }

    /// <summary>Whether a score needs the reconstruction G(E(x)) (the others use the encoder alone).</summary>
    public static bool NeedsReconstruction(string name) => name is Reconstruction or ReconstructionSsim or Fused;

    public static void CheckName(string name)
    {
        if (!Names.Contains(name)) throw new ArgumentException($"Unknown score '{name}'. Known: {string.Join(", ", Names)}.");
    }

    /// <summary>Only the paper's score needs no fitted statistics.</summary>
    public static double[] PaperScore(ScoreFeatures f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return f.LogLikelihood.Select(l => -l).ToArray();
    }

    public static OodScoreModel Fit(ScoreFeatures inDistribution, string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(inDistribution);
        var gaussian = GaussianFit.Fit(inDistribution.Latents, inDistribution.LatentDim);
        var levels = inDistribution.LevelFeatures.Select(f => GaussianFit.Fit(f, f.Length / inDistribution.Count, ridge: 1e-3)).ToArray();
        var levelStandardisation = levels.Select((g, l) => MeanStd(LevelDistances(g, inDistribution.LevelFeatures[l], inDistribution.Count))).ToArray();
        var partial = new OodScoreModel(new Statistics
        {
            Count = inDistribution.Count,
            DataFingerprint = fingerprint,
            MeanLogLikelihood = inDistribution.LogLikelihood.Average(),
            LevelStandardisation = levelStandardisation,
        }, gaussian, levels);
        var standardisation = FusedParts.ToDictionary(n => n, n => MeanStd(partial.Component(n, inDistribution)));
        return new OodScoreModel(partial.Stats with { Standardisation = standardisation }, gaussian, levels);
    }

    private static double[] MeanStd(double[] s)
    {
        var mean = s.Average();
        var std = Math.Sqrt(s.Sum(v => (v - mean) * (v - mean)) / Math.Max(1, s.Length - 1));
        return [mean, std > 0 ? std : 1];
    }

    private static double[] LevelDistances(GaussianFit g, float[] rows, int count) =>
        Enumerable.Range(0, count).Select(i => g.SquaredMahalanobis(rows.AsSpan(i * g.Dimension, g.Dimension))).ToArray();

    /// <summary>Sum over encoder levels of the standardised Mahalanobis distance of the pooled activations.</summary>
    private double[] EncoderFeatureScore(ScoreFeatures f)
    {
        var total = new double[f.Count];
        for (var l = 0; l < Levels.Length; l++)
        {
            var d = LevelDistances(Levels[l], f.LevelFeatures[l], f.Count);
            var (mean, std) = (Stats.LevelStandardisation[l][0], Stats.LevelStandardisation[l][1]);
            for (var i = 0; i < total.Length; i++) total[i] += (d[i] - mean) / std;
        }
        return total;
    }

    public double[] Score(string name, ScoreFeatures f)
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(f);
        if (name != Fused) return Component(name, f);
        var total = new double[f.Count];
        foreach (var part in FusedParts)
        {
            var s = Component(part, f);
            var (mean, std) = (Stats.Standardisation[part][0], Stats.Standardisation[part][1]);
            for (var i = 0; i < total.Length; i++) total[i] += (s[i] - mean) / std;
        }
        return total;
    }

    private double[] Component(string name, ScoreFeatures f) => name switch
    {
        LogLikelihood => PaperScore(f),
        Typicality => f.LogLikelihood.Select(l => Math.Abs(l - Stats.MeanLogLikelihood)).ToArray(),
        Mahalanobis => Enumerable.Range(0, f.Count).Select(i => Gaussian.SquaredMahalanobis(f.Latent(i))).ToArray(),
        Reconstruction => f.ReconstructionError.ToArray(),
        ReconstructionSsim => f.ReconstructionSsim.Select(s => 1 - s).ToArray(),
        Adversarial => f.Adversarial.Select(a => -(double)a).ToArray(),
        EncoderFeatures => EncoderFeatureScore(f),
        _ => throw new ArgumentException($"Unknown score '{name}'."),
    };

    public void Save(string directory)
    {
        File.WriteAllText(Path.Combine(directory, StatsFile), Json.Serialize(Stats));
        using var writer = new BinaryWriter(File.Create(Path.Combine(directory, GaussianFile)));
        writer.Write(1 + Levels.Length);
        foreach (var g in Levels.Prepend(Gaussian))
        {
            writer.Write(g.Dimension);
            foreach (var v in g.Mean) writer.Write(v);
            foreach (var v in g.Cholesky) writer.Write(v);
        }
    }

    /// <summary>The fitted statistics stored with a checkpoint, or null if none were fitted.</summary>
    public static OodScoreModel? Load(string directory)
    {
        var statsPath = Path.Combine(directory, StatsFile);
        var gaussianPath = Path.Combine(directory, GaussianFile);
        if (!File.Exists(statsPath) || !File.Exists(gaussianPath)) return null;
        try
        {
            var stats = Json.Deserialize<Statistics>(File.ReadAllText(statsPath));
            using var reader = new BinaryReader(File.OpenRead(gaussianPath));
            var count = reader.ReadInt32();
            if (count is < 1 or > 64) throw new InvalidDataException($"{count} Gaussians");
            var fits = new GaussianFit[count];
            for (var g = 0; g < count; g++)
            {
                var dim = reader.ReadInt32();
                if (dim is < 1 or > 8192) throw new InvalidDataException($"dimension {dim}");
                var mean = Enumerable.Range(0, dim).Select(_ => reader.ReadDouble()).ToArray();
                var chol = Enumerable.Range(0, dim * dim).Select(_ => reader.ReadDouble()).ToArray();
                if (mean.Concat(chol).Any(v => !double.IsFinite(v))) throw new InvalidDataException("non-finite statistics");
                fits[g] = GaussianFit.FromParts(mean, chol);
            }
            if (stats.LevelStandardisation.Length != count - 1) throw new InvalidDataException("level statistics do not match the Gaussians");
            return new OodScoreModel(stats, fits[0], fits[1..]);
        }
        catch (Exception ex) when (ex is JsonException or IOException or InvalidDataException or EndOfStreamException)
        {
            throw new CheckpointException($"{directory}: unreadable score statistics ({ex.Message})", ex);
        }
    }
}
