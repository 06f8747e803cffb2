using System.Text.Json;
using DlsganOod.Core.Data;
using DlsganOod.Core.Metrics;
using DlsganOod.Core.Model;
using static TorchSharp.torch;

namespace DlsganOod.Core.Scoring;

/// <summary>Everything the scores need, from one pass of a batch through E and G.</summary>
public sealed record ScoreFeatures(int Count, int LatentDim, float[] Latents, float[] Adversarial, double[] LogLikelihood,
    double[] ReconstructionError, double[] ReconstructionSsim)
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

    /// <summary>Encoder and reconstruction of one batch of planar model input, in one inference scope.</summary>
    public static ScoreFeatures ComputeBatch(DlsganModel model, float[] modelInput, int count)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(modelInput);
        var p = model.Preprocessing;
        model.Encoder.eval();
        model.Generator.eval();
        float[] latents, adversarial, reconstructed;
        double[] ll;
        using (inference_mode())
        using (var scope = NewDisposeScope())
        {
            var x = tensor(modelInput, [count, p.Channels, p.Height, p.Width], device: model.Device);
            var (adv, z) = model.Encoder.forward(x);
            var rec = model.Generator.forward(z * model.LatentScale());
            latents = z.cpu().data<float>().ToArray();
            adversarial = adv.cpu().data<float>().ToArray();
            reconstructed = rec.cpu().data<float>().ToArray();
            ll = LatentLogLikelihood.Compute(z, model.LatentMean, model.LatentVariance).cpu().data<double>().ToArray();
        }
        var size = p.ModelSize;
        var mse = new double[count];
        var ssim = new double[count];
        for (var i = 0; i < count; i++)
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
        return new ScoreFeatures(count, model.Config.LatentDim, latents, adversarial, ll, mse, ssim);
    }

    public static ScoreFeatures Concat(IReadOnlyList<ScoreFeatures> parts, int latentDim)
    {
        ArgumentNullException.ThrowIfNull(parts);
        return new ScoreFeatures(parts.Sum(p => p.Count), latentDim,
            parts.SelectMany(p => p.Latents).ToArray(), parts.SelectMany(p => p.Adversarial).ToArray(),
            parts.SelectMany(p => p.LogLikelihood).ToArray(), parts.SelectMany(p => p.ReconstructionError).ToArray(),
            parts.SelectMany(p => p.ReconstructionSsim).ToArray());
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
    public const string Fused = "fused";
    public static readonly string[] Names = [LogLikelihood, Typicality, Mahalanobis, Reconstruction, ReconstructionSsim, Adversarial, Fused];
    private static readonly string[] FusedParts = [LogLikelihood, Typicality, Mahalanobis, Reconstruction, ReconstructionSsim, Adversarial];

    public const string StatsFile = "scores.json";
    public const string GaussianFile = "scores-gaussian.bin";

    public sealed record Statistics
    {
        public int Count { get; init; }
        public string DataFingerprint { get; init; } = "";
        public double MeanLogLikelihood { get; init; }
        /// <summary>Mean and standard deviation of each component score on the fit data, for the fused score.</summary>
        public Dictionary<string, double[]> Standardisation { get; init; } = new();
    }

    private OodScoreModel(Statistics stats, GaussianFit gaussian)
    {
        Stats = stats;
        Gaussian = gaussian;
    }

    public Statistics Stats { get; }
    public GaussianFit Gaussian { get; }

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
        var partial = new OodScoreModel(new Statistics
        {
            Count = inDistribution.Count,
            DataFingerprint = fingerprint,
            MeanLogLikelihood = inDistribution.LogLikelihood.Average(),
        }, gaussian);
        var standardisation = FusedParts.ToDictionary(n => n, n =>
        {
            var s = partial.Component(n, inDistribution);
            var mean = s.Average();
            var std = Math.Sqrt(s.Sum(v => (v - mean) * (v - mean)) / Math.Max(1, s.Length - 1));
            return new[] { mean, std > 0 ? std : 1 };
        });
        return new OodScoreModel(partial.Stats with { Standardisation = standardisation }, gaussian);
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
        _ => throw new ArgumentException($"Unknown score '{name}'."),
    };

    public void Save(string directory)
    {
        File.WriteAllText(Path.Combine(directory, StatsFile), Json.Serialize(Stats));
        using var writer = new BinaryWriter(File.Create(Path.Combine(directory, GaussianFile)));
        writer.Write(Gaussian.Dimension);
        foreach (var v in Gaussian.Mean) writer.Write(v);
        foreach (var v in Gaussian.Cholesky) writer.Write(v);
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
            var dim = reader.ReadInt32();
            if (dim is < 1 or > 65536) throw new InvalidDataException($"dimension {dim}");
            var mean = Enumerable.Range(0, dim).Select(_ => reader.ReadDouble()).ToArray();
            var chol = Enumerable.Range(0, dim * dim).Select(_ => reader.ReadDouble()).ToArray();
            if (mean.Concat(chol).Any(v => !double.IsFinite(v))) throw new InvalidDataException("non-finite statistics");
            return new OodScoreModel(stats, GaussianFit.FromParts(mean, chol));
        }
        catch (Exception ex) when (ex is JsonException or IOException or InvalidDataException or EndOfStreamException)
        {
            throw new CheckpointException($"{directory}: unreadable score statistics ({ex.Message})", ex);
        }
    }
}
