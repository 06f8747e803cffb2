using System.Globalization;
using System.Text;
using DlsganOod.Core.Corruptions;
using DlsganOod.Core.Data;
using DlsganOod.Core.Metrics;
using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;

namespace DlsganOod.Core.Evaluation;

public sealed record OodSetResult(string Name, int Count, DetectionMetrics Metrics, double? PaperAuroc, double? FlaggedRate);

public sealed record EvaluationReport
{
    public string Model { get; init; } = "";
    public string ModelSha256 { get; init; } = "";
    public string Score { get; init; } = "log_likelihood";
    public int InDistributionCount { get; init; }
    public string InDistributionSource { get; init; } = "";
    public int CorruptionSeed { get; init; }
    public double? Threshold { get; init; }
    public double? InDistributionFlaggedRate { get; init; }
    public List<OodSetResult> Results { get; init; } = [];
    /// <summary>AUROC of every available score on every OOD set (score → set → AUROC).</summary>
    public Dictionary<string, Dictionary<string, double>> ScoreComparison { get; init; } = new();
    /// <summary>Raw scores for pictures (score → in-distribution values); not written to JSON.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public Dictionary<string, double[]> InScores { get; init; } = new();
    /// <summary>Raw scores for pictures (score → OOD set → values); not written to JSON.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public Dictionary<string, Dictionary<string, double[]>> OodScores { get; init; } = new();
    public double MeanAuroc => Results.Count == 0 ? double.NaN : Results.Average(r => r.Metrics.Auroc);
    public DateTimeOffset EvaluatedAt { get; init; } = DateTimeOffset.UtcNow;
    public double Seconds { get; init; }

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"Model `{Model}` (sha256 {ModelSha256[..Math.Min(12, ModelSha256.Length)]}…), score `{Score}`, in-distribution: {InDistributionCount} images ({InDistributionSource}); OOD is the positive class.");
        sb.AppendLine();
        var flagged = Threshold is not null;
        sb.AppendLine("| OOD set | n | AUROC | paper AUROC | Δ vs paper | AUPR-in | AUPR-out | FPR@95%TPR |" + (flagged ? " flagged at threshold |" : ""));
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|" + (flagged ? "---:|" : ""));
        foreach (var r in Results)
        {
            var paper = r.PaperAuroc is { } p ? p.ToString("F4", inv) : "–";
            var delta = r.PaperAuroc is { } q ? Math.Round(r.Metrics.Auroc - q, 4).ToString("+0.0000;-0.0000;0.0000", inv) : "–";
            sb.Append(inv, $"| {r.Name} | {r.Count} | {r.Metrics.Auroc:F4} | {paper} | {delta} | {r.Metrics.AuprIn:F4} | {r.Metrics.AuprOut:F4} | {r.Metrics.FprAt95Tpr:F4} |");
            if (flagged) sb.Append(inv, $" {r.FlaggedRate:P1} |");
            sb.AppendLine();
        }
        sb.Append(inv, $"| **mean** | | **{MeanAuroc:F4}** | | | | | |").AppendLine(flagged ? " |" : "");
        if (flagged)
            sb.AppendLine().AppendLine(inv, $"Threshold {Threshold:F3}: {InDistributionFlaggedRate:P2} of the clean in-distribution images flagged.");
        if (ScoreComparison.Count > 1)
        {
            var scores = ScoreComparison.Keys.ToArray();
            sb.AppendLine().AppendLine("AUROC of every score (higher is better; bold = best per row):").AppendLine();
            sb.AppendLine("| OOD set | paper | " + string.Join(" | ", scores) + " |");
            sb.AppendLine("|---|---:|" + string.Concat(scores.Select(_ => "---:|")));
            foreach (var set in ScoreComparison[scores[0]].Keys)
            {
                var best = scores.Max(sc => ScoreComparison[sc][set]);
                var paper = MnistC.PaperAuroc.TryGetValue(set, out var p) ? p.ToString("F4", inv) : "–";
                sb.Append(inv, $"| {set} | {paper} |");
                foreach (var sc in scores)
                {
                    var v = ScoreComparison[sc][set];
                    sb.Append(' ').Append(v == best ? $"**{v.ToString("F4", inv)}**" : v.ToString("F4", inv)).Append(" |");
                }
                sb.AppendLine();
            }
            sb.Append("| **mean** | |");
            foreach (var sc in scores) sb.Append(inv, $" {ScoreComparison[sc].Values.Average():F4} |");
            sb.AppendLine();
        }
        return sb.ToString();
    }
}

/// <summary>
/// The evaluation protocol: in-distribution = clean test digits; each OOD set = the same digits under one
/// MNIST-C corruption (so only the corruption differs), plus any extra sets (Fashion-MNIST).
/// </summary>
public static class OodEvaluation
{
    public const string FashionMnistTestImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

    /// <param name="score">The score whose full metrics are reported (higher = more OOD; log_likelihood = the paper's).</param>
    /// <param name="scores">Fitted statistics for the scores beyond the paper; without them only log_likelihood is evaluated.</param>
    public static EvaluationReport Run(LoadedCheckpoint checkpoint, ImageSet inDistribution, string inSource,
        IReadOnlyList<string> corruptions, int seed, IReadOnlyDictionary<string, ImageSet>? extraSets = null, Action<string>? log = null,
        string score = OodScoreModel.LogLikelihood, OodScoreModel? scores = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(inDistribution);
        ArgumentNullException.ThrowIfNull(corruptions);
        OodScoreModel.CheckName(score);
        if (score != OodScoreModel.LogLikelihood && scores is null)
            throw new ArgumentException($"Score '{score}' needs fitted statistics; run `dlsgan-ood calibrate --score all` first.");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var model = checkpoint.Model;
        var available = scores is null ? [OodScoreModel.LogLikelihood] : OodScoreModel.Names;
        double[] ScoreOf(string name, ScoreFeatures f) => scores is null ? OodScoreModel.PaperScore(f) : scores.Score(name, f);
        var inFeatures = ScoreFeatures.Compute(model, inDistribution);
        var inScores = available.ToDictionary(n => n, n => ScoreOf(n, inFeatures));
        var calibration = score == OodScoreModel.LogLikelihood ? checkpoint.Metadata.Calibration : checkpoint.Metadata.ScoreCalibrations?.GetValueOrDefault(score);
        // Thresholds are stored on the score's own scale: log-likelihood (OOD below) or score (OOD above).
        bool? Flag(double s) => calibration is null ? null : score == OodScoreModel.LogLikelihood ? -s < calibration.Threshold : s > calibration.Threshold;
        var results = new List<OodSetResult>();
        var comparison = available.ToDictionary(n => n, _ => new Dictionary<string, double>());
        var raw = available.ToDictionary(n => n, _ => new Dictionary<string, double[]>());
        var sets = corruptions.Select(name => (name, Lazy: new Lazy<ImageSet>(() => MnistC.Apply(name, inDistribution, seed))))
            .Concat((extraSets ?? new Dictionary<string, ImageSet>()).Select(kv => (name: kv.Key, Lazy: new Lazy<ImageSet>(() => kv.Value))));
        foreach (var (name, lazy) in sets)
        {
            var features = ScoreFeatures.Compute(model, lazy.Value);
            foreach (var n in available)
            {
                raw[n][name] = ScoreOf(n, features);
                comparison[n][name] = OodMetrics.Auroc(inScores[n], raw[n][name]);
            }
            var oodScores = ScoreOf(score, features);
            var metrics = OodMetrics.Compute(inScores[score], oodScores);
            double? flagged = calibration is null ? null : oodScores.Count(v => Flag(v) == true) / (double)oodScores.Length;
            results.Add(new OodSetResult(name, oodScores.Length, metrics, MnistC.PaperAuroc.TryGetValue(name, out var p) ? p : null, flagged));
            log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"{name,-14} AUROC {metrics.Auroc:F4}")
                + (available.Length > 1 ? " | " + string.Join(' ', available.Select(n => string.Create(CultureInfo.InvariantCulture, $"{n} {comparison[n][name]:F3}"))) : ""));
        }
        return new EvaluationReport
        {
            Model = checkpoint.Metadata.Name,
            ModelSha256 = checkpoint.Sha256,
            Score = score,
            InDistributionCount = inDistribution.Count,
            InDistributionSource = inSource,
            CorruptionSeed = seed,
            Threshold = calibration?.Threshold,
            InDistributionFlaggedRate = calibration is null ? null : inScores[score].Count(v => Flag(v) == true) / (double)inScores[score].Length,
            Results = results,
            ScoreComparison = comparison,
            InScores = inScores,
            OodScores = raw,
            Seconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
        };
    }
}
