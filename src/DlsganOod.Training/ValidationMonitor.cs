using System.Globalization;
using DlsganOod.Core.Corruptions;
using DlsganOod.Core.Data;
using DlsganOod.Core.Metrics;
using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;

namespace DlsganOod.Training;

/// <summary>
/// Watches a run on held-out validation digits: AUROC of the paper's score against the paper's ten corruptions
/// of those same digits. Settings are compared with these figures, never with the test split.
/// </summary>
public sealed class ValidationMonitor
{
    private readonly ImageSet clean;
    private readonly Dictionary<string, ImageSet> corrupted;
    private readonly string logPath;

    public ValidationMonitor(ImageSet validation, string logPath, int seed = 12345)
    {
        ArgumentNullException.ThrowIfNull(validation);
        clean = validation;
        corrupted = MnistC.PaperAuroc.Keys.ToDictionary(n => n, n => MnistC.Apply(n, validation, seed));
        this.logPath = logPath;
    }

    public IReadOnlyDictionary<string, double> Measure(DlsganModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var inScores = Inference.Encode(model, clean).LogLikelihood.Select(l => -l).ToArray();
        return corrupted.ToDictionary(kv => kv.Key,
            kv => OodMetrics.Auroc(inScores, Inference.Encode(model, kv.Value).LogLikelihood.Select(l => -l).ToArray()));
    }

    /// <summary>Measures, appends a row to the validation log and returns a one-line summary.</summary>
    public string Evaluate(int epoch, DlsganModel model)
    {
        var auroc = Measure(model);
        var names = auroc.Keys.Order(StringComparer.Ordinal).ToArray();
        if (!File.Exists(logPath))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logPath))!);
            File.WriteAllText(logPath, "epoch,mean_auroc," + string.Join(',', names) + "\n");
        }
        var mean = auroc.Values.Average();
        File.AppendAllText(logPath, string.Join(',', new[] { epoch.ToString(CultureInfo.InvariantCulture), mean.ToString("F4", CultureInfo.InvariantCulture) }
            .Concat(names.Select(n => auroc[n].ToString("F4", CultureInfo.InvariantCulture)))) + "\n");
        return string.Create(CultureInfo.InvariantCulture, $"validation epoch {epoch}: mean AUROC {mean:F4} | ")
            + string.Join(' ', names.Select(n => string.Create(CultureInfo.InvariantCulture, $"{n} {auroc[n]:F3}")));
    }
}
