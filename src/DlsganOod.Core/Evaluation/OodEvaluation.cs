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
            var delta = r.PaperAuroc is { } q ? (r.Metrics.Auroc - q).ToString("+0.0000;-0.0000", inv) : "–";
            sb.Append(inv, $"| {r.Name} | {r.Count} | {r.Metrics.Auroc:F4} | {paper} | {delta} | {r.Metrics.AuprIn:F4} | {r.Metrics.AuprOut:F4} | {r.Metrics.FprAt95Tpr:F4} |");
            if (flagged) sb.Append(inv, $" {r.FlaggedRate:P1} |");
            sb.AppendLine();
        }
        sb.Append(inv, $"| **mean** | | **{MeanAuroc:F4}** | | | | | |").AppendLine(flagged ? " |" : "");
        if (flagged)
            sb.AppendLine().AppendLine(inv, $"Threshold {Threshold:F3}: {InDistributionFlaggedRate:P2} of the clean in-distribution images flagged.");
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

    public static EvaluationReport Run(LoadedCheckpoint checkpoint, ImageSet inDistribution, string inSource,
        IReadOnlyList<string> corruptions, int seed, IReadOnlyDictionary<string, ImageSet>? extraSets = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(inDistribution);
        ArgumentNullException.ThrowIfNull(corruptions);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var model = checkpoint.Model;
        var inLl = Inference.Encode(model, inDistribution).LogLikelihood;
        var inScores = inLl.Select(l => -l).ToArray();
        var threshold = checkpoint.Metadata.Calibration?.Threshold;
        var results = new List<OodSetResult>();
        var sets = corruptions.Select(name => (name, Lazy: new Lazy<ImageSet>(() => MnistC.Apply(name, inDistribution, seed))))
            .Concat((extraSets ?? new Dictionary<string, ImageSet>()).Select(kv => (name: kv.Key, Lazy: new Lazy<ImageSet>(() => kv.Value))));
        foreach (var (name, lazy) in sets)
        {
            var oodLl = Inference.Encode(model, lazy.Value).LogLikelihood;
            var metrics = OodMetrics.Compute(inScores, oodLl.Select(l => -l).ToArray());
            double? flagged = threshold is { } t ? oodLl.Count(l => l < t) / (double)oodLl.Length : null;
            results.Add(new OodSetResult(name, oodLl.Length, metrics, MnistC.PaperAuroc.TryGetValue(name, out var p) ? p : null, flagged));
            log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"{name,-14} AUROC {metrics.Auroc:F4}"));
        }
        return new EvaluationReport
        {
            Model = checkpoint.Metadata.Name,
            ModelSha256 = checkpoint.Sha256,
            InDistributionCount = inDistribution.Count,
            InDistributionSource = inSource,
            CorruptionSeed = seed,
            Threshold = threshold,
            InDistributionFlaggedRate = threshold is { } th ? inLl.Count(l => l < th) / (double)inLl.Length : null,
            Results = results,
            Seconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
        };
    }
}
