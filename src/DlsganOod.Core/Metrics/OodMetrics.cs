namespace DlsganOod.Core.Metrics;

/// <summary>Detection figures with OOD as the positive class and "higher score = more OOD".</summary>
public sealed record DetectionMetrics(double Auroc, double AuprIn, double AuprOut, double FprAt95Tpr);

/// <summary>
/// Threshold-free OOD metrics, exact (no binning), ties handled by grouping equal scores.
/// The paper sweeps 100 fixed thresholds; exact figures are never lower than a binned sweep's trapezoid.
/// </summary>
public static class OodMetrics
{
    /// <summary>AUROC = P(s_ood &gt; s_in) + ½ P(s_ood = s_in) (Mann–Whitney U).</summary>
    public static double Auroc(IReadOnlyList<double> inScores, IReadOnlyList<double> oodScores)
    {
        Check(inScores, oodScores);
        var all = inScores.Select(s => (Score: s, Ood: false)).Concat(oodScores.Select(s => (Score: s, Ood: true)))
            .OrderBy(p => p.Score).ToArray();
        double rankSumOod = 0;
        var i = 0;
        while (i < all.Length)
        {
            var j = i;
            while (j + 1 < all.Length && all[j + 1].Score == all[i].Score) j++;
            var averageRank = (i + j) / 2.0 + 1; // 1-based mid-rank of the tie group
            for (var k = i; k <= j; k++)
                if (all[k].Ood) rankSumOod += averageRank;
            i = j + 1;
        }
        double nOod = oodScores.Count, nIn = inScores.Count;
        return (rankSumOod - nOod * (nOod + 1) / 2) / (nOod * nIn);
    }

    /// <summary>Average precision with the given class as positive (step-wise, as scikit-learn's average_precision_score).</summary>
    public static double AveragePrecision(IReadOnlyList<double> positiveScores, IReadOnlyList<double> negativeScores)
    {
        Check(negativeScores, positiveScores);
        var all = positiveScores.Select(s => (Score: s, Pos: true)).Concat(negativeScores.Select(s => (Score: s, Pos: false)))
            .OrderByDescending(p => p.Score).ToArray();
        double tp = 0, fp = 0, ap = 0, previousRecall = 0;
        var i = 0;
        while (i < all.Length)
        {
            var j = i;
            while (j + 1 < all.Length && all[j + 1].Score == all[i].Score) j++;
            for (var k = i; k <= j; k++)
                if (all[k].Pos) tp++; else fp++;
            var recall = tp / positiveScores.Count;
            var precision = tp / (tp + fp);
            ap += (recall - previousRecall) * precision;
            previousRecall = recall;
            i = j + 1;
        }
        return ap;
    }

    /// <summary>Fraction of in-distribution inputs flagged when the threshold flags at least 95% of OOD inputs.</summary>
    public static double FprAtTpr(IReadOnlyList<double> inScores, IReadOnlyList<double> oodScores, double tpr = 0.95)
    {
        Check(inScores, oodScores);
        var sortedOod = oodScores.OrderByDescending(s => s).ToArray();
        // Smallest threshold t with "score ≥ t is OOD" reaching the TPR: the ceil(tpr·n)-th highest OOD score.
        var needed = (int)Math.Ceiling(tpr * sortedOod.Length - 1e-9);
        var threshold = sortedOod[Math.Max(needed, 1) - 1];
        return inScores.Count(s => s >= threshold) / (double)inScores.Count;
    }

    /// <summary>ROC curve points (FPR, TPR) over every distinct threshold, from (0,0) to (1,1).</summary>
    public static (double[] Fpr, double[] Tpr) RocCurve(IReadOnlyList<double> inScores, IReadOnlyList<double> oodScores)
    {
        Check(inScores, oodScores);
        var all = inScores.Select(s => (Score: s, Ood: false)).Concat(oodScores.Select(s => (Score: s, Ood: true)))
            .OrderByDescending(p => p.Score).ToArray();
        var fpr = new List<double> { 0 };
        var tpr = new List<double> { 0 };
        double tp = 0, fp = 0;
        var i = 0;
        while (i < all.Length)
        {
            var j = i;
            while (j + 1 < all.Length && all[j + 1].Score == all[i].Score) j++;
            for (var k = i; k <= j; k++)
                if (all[k].Ood) tp++; else fp++;
            fpr.Add(fp / inScores.Count);
            tpr.Add(tp / oodScores.Count);
            i = j + 1;
        }
        return (fpr.ToArray(), tpr.ToArray());
    }

    public static DetectionMetrics Compute(IReadOnlyList<double> inScores, IReadOnlyList<double> oodScores) => new(
        Auroc(inScores, oodScores),
        AveragePrecision(inScores.Select(s => -s).ToArray(), oodScores.Select(s => -s).ToArray()),
        AveragePrecision(oodScores, inScores),
        FprAtTpr(inScores, oodScores));

    /// <summary>
    /// Threshold on an "OOD if score &gt; t" scale such that at most <paramref name="targetFpr"/> of the given
    /// in-distribution scores exceed it; returns the threshold and the achieved rate on those scores.
    /// </summary>
    public static (double Threshold, double AchievedFpr) ThresholdForFpr(IReadOnlyList<double> inScores, double targetFpr)
    {
        ArgumentNullException.ThrowIfNull(inScores);
        if (inScores.Count == 0) throw new ArgumentException("No in-distribution scores to calibrate on.", nameof(inScores));
        if (targetFpr is <= 0 or >= 1 || double.IsNaN(targetFpr)) throw new ArgumentOutOfRangeException(nameof(targetFpr), targetFpr, "The target false-positive rate must lie in (0, 1).");
        var sorted = inScores.OrderByDescending(s => s).ToArray();
        var allowed = (int)Math.Floor(targetFpr * sorted.Length + 1e-9);
        // Flag strictly above the (allowed+1)-th highest score: exactly `allowed` exceed it unless ties straddle it.
        var threshold = sorted[Math.Min(allowed, sorted.Length - 1)];
        var achieved = sorted.Count(s => s > threshold) / (double)sorted.Length;
        return (threshold, achieved);
    }

    private static void Check(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count == 0 || b.Count == 0) throw new ArgumentException("Both score sets must be non-empty.");
        if (a.Any(double.IsNaN) || b.Any(double.IsNaN)) throw new ArgumentException("Scores contain NaN.");
    }
}
