using DlsganOod.Core.Metrics;
using FsCheck;
using FsCheck.Xunit;

namespace DlsganOod.Core.Tests;

public class OodMetricsTests
{
    [Fact]
    public void Auroc_counts_ordered_pairs_and_half_ties()
    {
        // in = {1, 2, 3}, ood = {2, 4}: pairs (ood > in): 4>1,4>2,4>3, 2>1 = 4; ties: 2=2 → 0.5; total 6.
        Assert.Equal(4.5 / 6, OodMetrics.Auroc([1, 2, 3], [2, 4]), 12);
    }

    [Fact]
    public void Auroc_is_one_for_perfect_separation_and_zero_for_inverted()
    {
        Assert.Equal(1.0, OodMetrics.Auroc([0, 1, 2], [3, 4]));
        Assert.Equal(0.0, OodMetrics.Auroc([3, 4], [0, 1, 2]));
        Assert.Equal(0.5, OodMetrics.Auroc([1, 1], [1, 1, 1]));
    }

    [Fact]
    public void Average_precision_matches_a_hand_computed_ranking()
    {
        // ranking by score desc: 0.9(P) 0.8(N) 0.7(P) 0.1(N): AP = 1/2·1 + 1/2·(2/3) = 0.8333
        Assert.Equal(0.5 * 1 + 0.5 * (2.0 / 3), OodMetrics.AveragePrecision([0.9, 0.7], [0.8, 0.1]), 12);
    }

    [Fact]
    public void Aupr_in_treats_in_distribution_as_positive_with_reversed_scores()
    {
        var m = OodMetrics.Compute([0.1, 0.8], [0.9, 0.7]);
        // in positive, score = −s: ranking −0.1(in) −0.7(ood) −0.8(in) −0.9(ood): AP = ½·1 + ½·(2/3)
        Assert.Equal(0.5 + 0.5 * (2.0 / 3), m.AuprIn, 12);
        Assert.Equal(0.5 + 0.5 * (2.0 / 3), m.AuprOut, 12);
    }

    [Fact]
    public void Fpr_at_95_tpr_uses_the_threshold_reaching_95_percent_of_ood()
    {
        var ood = Enumerable.Range(1, 20).Select(i => (double)i).ToArray(); // 95% of 20 = 19 → threshold 2
        double[] inScores = [0, 1, 1.5, 2, 3, 10];
        Assert.Equal(3 / 6.0, OodMetrics.FprAtTpr(inScores, ood), 12);
    }

    [Fact]
    public void Threshold_for_fpr_flags_the_target_share()
    {
        var scores = Enumerable.Range(0, 1000).Select(i => (double)i).ToArray();
        var (t, achieved) = OodMetrics.ThresholdForFpr(scores, 0.01);
        Assert.Equal(989, t);
        Assert.Equal(0.01, achieved, 12);
        Assert.Equal(10, scores.Count(s => s > t));
    }

    [Property(MaxTest = 200)]
    public bool Auroc_of_swapped_sets_is_one_minus(NonEmptyArray<NormalFloat> a, NonEmptyArray<NormalFloat> b)
    {
        var x = a.Get.Select(v => v.Get).ToArray();
        var y = b.Get.Select(v => v.Get).ToArray();
        return Math.Abs(OodMetrics.Auroc(x, y) + OodMetrics.Auroc(y, x) - 1) < 1e-9;
    }

    [Property(MaxTest = 200)]
    public bool Auroc_is_invariant_to_monotone_transforms(NonEmptyArray<NormalFloat> a, NonEmptyArray<NormalFloat> b)
    {
        var x = a.Get.Select(v => v.Get).ToArray();
        var y = b.Get.Select(v => v.Get).ToArray();
        return Math.Abs(OodMetrics.Auroc(x, y) - OodMetrics.Auroc(x.Select(Math.Atan).ToArray(), y.Select(Math.Atan).ToArray())) < 1e-9;
    }

    [Property(MaxTest = 200)]
    public bool Auroc_equals_brute_force_pair_count(NonEmptyArray<int> a, NonEmptyArray<int> b)
    {
        var x = a.Get.Select(v => (double)(v % 7)).ToArray();
        var y = b.Get.Select(v => (double)(v % 7)).ToArray();
        double wins = 0;
        foreach (var o in y)
            foreach (var i in x)
                wins += o > i ? 1 : o == i ? 0.5 : 0;
        return Math.Abs(OodMetrics.Auroc(x, y) - wins / (x.Length * y.Length)) < 1e-9;
    }
}
