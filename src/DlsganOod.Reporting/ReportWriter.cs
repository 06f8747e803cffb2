using System.Globalization;
using System.Text;
using DlsganOod.Core.Corruptions;
using DlsganOod.Core.Data;
using DlsganOod.Core.Evaluation;
using DlsganOod.Core.Imaging;
using DlsganOod.Core.Metrics;
using DlsganOod.Core.Model;
using DlsganOod.Core.Quality;

namespace DlsganOod.Reporting;

/// <summary>AUROC of one score on one OOD set across training seeds.</summary>
public sealed record SeedSpread(string Score, string Set, double Mean, double Std, int Seeds);

/// <summary>
/// docs/results/&lt;model&gt;/report.md with its pictures: the quality table beside the paper's Figure 2, the OOD
/// table beside its Figure 3, every score compared, the spread over training seeds, ROC curves, score
/// histograms and image grids.
/// </summary>
public static class ReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Write(string directory, LoadedCheckpoint checkpoint, EvaluationReport report, QualityReport? quality,
        IReadOnlyList<SeedSpread>? seeds, ImageSet test, int corruptionSeed, string reproduce)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(test);
        Directory.CreateDirectory(directory);
        var md = new StringBuilder();
        md.AppendLine(Inv, $"# Evaluation report: model `{report.Model}`").AppendLine();
        md.AppendLine(Inv, $"sha256 `{report.ModelSha256}`, evaluated {report.EvaluatedAt:yyyy-MM-dd HH:mm} UTC in {report.Seconds:F0} s. Reproduce with `{reproduce}`.").AppendLine();
        if (checkpoint.Metadata.Training is { } t)
            md.AppendLine(Inv, $"Trained on {t.DataCount} images ({t.DataSource}), {t.Epochs} epochs / {t.Steps} steps, {t.Seconds / 3600:F2} h; options: {string.Join(", ", t.Options.Select(kv => $"{kv.Key}={kv.Value}"))}.").AppendLine();

        if (quality is not null)
        {
            md.AppendLine("## Generative quality (the paper's Figure 2)").AppendLine();
            md.AppendLine(Inv, $"{quality.Count} test images and as many generated. FID and precision/recall are computed in the feature space of `{quality.FeatureNetwork}` (a small MNIST classifier trained by this project, validation accuracy {quality.ClassifierAccuracy:P1}): **classifier-FID, not comparable to Inception FID**. PSNR/SSIM on [-1, 1] images, data range 2.0.").AppendLine();
            md.AppendLine("| metric | this model | paper |").AppendLine("|---|---:|---:|");
            void Row(string name, double value) => md.AppendLine(Inv, $"| {name} | {value:F4} | {QualityReport.Paper[name]:F4}{(name == "FID" ? " (Inception)" : "")} |");
            Row("FID", quality.ClassifierFid);
            Row("Precision", quality.Precision);
            Row("Recall", quality.Recall);
            Row("Fake PSNR", quality.FakePsnr);
            Row("Fake SSIM", quality.FakeSsim);
            Row("Real PSNR", quality.RealPsnr);
            Row("Real SSIM", quality.RealSsim);
            md.AppendLine();
        }

        md.AppendLine(Inv, $"## OOD detection with the `{report.Score}` score (the paper's Figure 3)").AppendLine();
        md.AppendLine(report.ToMarkdown());

        if (seeds is { Count: > 0 })
        {
            var n = seeds.Max(s => s.Seeds);
            md.AppendLine(Inv, $"## Spread over {n} training seeds (AUROC mean ± standard deviation)").AppendLine();
            var scores = seeds.Select(s => s.Score).Distinct().ToArray();
            md.AppendLine("| OOD set | " + string.Join(" | ", scores) + " |");
            md.AppendLine("|---|" + string.Concat(scores.Select(_ => "---:|")));
            foreach (var set in seeds.Select(s => s.Set).Distinct())
                md.Append("| ").Append(set).Append(" | ")
                    .Append(string.Join(" | ", scores.Select(sc => seeds.FirstOrDefault(x => x.Score == sc && x.Set == set) is { } v ? string.Create(Inv, $"{v.Mean:F4} ± {v.Std:F4}") : "–")))
                    .AppendLine(" |");
            md.AppendLine();
        }

        md.AppendLine("## Pictures").AppendLine();
        var best = report.ScoreComparison.Count == 0 ? report.Score : report.ScoreComparison.MaxBy(kv => kv.Value.Values.Average()).Key;
        foreach (var score in new[] { report.Score, best }.Distinct())
        {
            if (!report.InScores.ContainsKey(score)) continue;
            File.WriteAllBytes(Path.Combine(directory, $"roc-{score}.png"), RocPlot(report, score));
            File.WriteAllBytes(Path.Combine(directory, $"histograms-{score}.png"), Histograms(report, score));
            md.AppendLine(Inv, $"ROC curves, score `{score}`:").AppendLine().AppendLine(Inv, $"![ROC {score}](roc-{score}.png)").AppendLine();
            md.AppendLine(Inv, $"Score histograms, in-distribution (clean test digits) vs each OOD set, score `{score}`:").AppendLine().AppendLine(Inv, $"![histograms {score}](histograms-{score}.png)").AppendLine();
        }
        // Every n-th test digit: the split is ordered by class, so this shows all ten.
        var spread = test.Select(Enumerable.Range(0, 16).Select(i => i * test.Count / 16).ToArray());
        File.WriteAllBytes(Path.Combine(directory, "samples.png"), ImageGrid.Render(Pictures.RealReconstructedGenerated(checkpoint.Model, spread, 0)));
        md.AppendLine("Real test digits, their reconstructions G(E(x)), and generated samples G(z):").AppendLine().AppendLine("![samples](samples.png)").AppendLine();
        var few = test.Select(Enumerable.Range(0, 12).Select(i => i * test.Count / 12).ToArray());
        var rows = new List<(string, IReadOnlyList<DecodedImage>)> { ("clean", ImageGrid.FromSet(few, 12)) };
        rows.AddRange(MnistC.Names.Select(n => (n, ImageGrid.FromSet(MnistC.Apply(n, few, corruptionSeed), 12))));
        File.WriteAllBytes(Path.Combine(directory, "corruptions.png"), ImageGrid.Render(rows));
        md.AppendLine("The OOD sets (MNIST-C corruptions of the same test digits):").AppendLine().AppendLine("![corruptions](corruptions.png)").AppendLine();
        var path = Path.Combine(directory, "report.md");
        File.WriteAllText(path, md.ToString());
        return path;
    }

    private static byte[] RocPlot(EvaluationReport report, string score)
    {
        using var plot = new ScottPlot.Plot();
        foreach (var (set, values) in report.OodScores[score])
        {
            var (fpr, tpr) = OodMetrics.RocCurve(report.InScores[score], values);
            var line = plot.Add.ScatterLine(fpr, tpr);
            line.LegendText = string.Create(Inv, $"{set} ({report.ScoreComparison[score][set]:F3})");
        }
        plot.Title($"ROC, score {score} (OOD positive)");
        plot.XLabel("false-positive rate");
        plot.YLabel("true-positive rate");
        plot.Axes.SetLimits(0, 1, 0, 1.01);
        plot.ShowLegend(ScottPlot.Edge.Right);
        return plot.GetImageBytes(1000, 620, ScottPlot.ImageFormat.Png);
    }

    private static byte[] Histograms(EvaluationReport report, string score)
    {
        var inValues = report.InScores[score];
        var images = new List<byte[]>();
        foreach (var (set, values) in report.OodScores[score])
        {
            using var plot = new ScottPlot.Plot();
            var all = inValues.Concat(values).Where(double.IsFinite).ToArray();
            // Robust range: extreme OOD scores would squash the in-distribution histogram to one bar.
            var sorted = all.Order().ToArray();
            var (lo, hi) = (sorted[(int)(0.005 * (sorted.Length - 1))], sorted[(int)(0.995 * (sorted.Length - 1))]);
            if (hi <= lo) hi = lo + 1;
            foreach (var (label, data) in new[] { ("in-distribution", inValues), (set, values) })
            {
                var hist = ScottPlot.Statistics.Histogram.WithBinCount(40, lo, hi);
                hist.AddRange(data.Where(v => v >= lo && v <= hi));
                var bars = plot.Add.Bars(hist.Bins, hist.GetProbability());
                bars.LegendText = label;
                foreach (var b in bars.Bars)
                {
                    b.Size = (hi - lo) / 40 * 0.9;
                    b.FillColor = (label == set ? ScottPlot.Colors.Red : ScottPlot.Colors.Blue).WithAlpha(0.45);
                    b.LineWidth = 0;
                }
            }
            plot.Title(string.Create(Inv, $"{set}: AUROC {report.ScoreComparison[score][set]:F3}"));
            plot.ShowLegend();
            images.Add(plot.GetImageBytes(420, 260, ScottPlot.ImageFormat.Png));
        }
        return PngComposer.Grid(images, 4);
    }
}
