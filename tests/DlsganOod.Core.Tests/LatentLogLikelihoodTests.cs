using DlsganOod.Core.Scoring;
using FsCheck;
using FsCheck.Xunit;
using static TorchSharp.torch;

namespace DlsganOod.Core.Tests;

public class LatentLogLikelihoodTests
{
    [Fact]
    public void Matches_the_closed_form_of_a_standard_normal()
    {
        // log N(0; 0, 1) = −½ log 2π per dimension.
        var d = 256;
        var ll = LatentLogLikelihood.Compute(new float[d], new float[d], Enumerable.Repeat(1f, d).ToArray());
        Assert.Equal(-0.5 * d * Math.Log(2 * Math.PI), ll, 9);
    }

    [Fact]
    public void Matches_the_closed_form_with_mean_and_variance()
    {
        float[] z = [1, -2];
        float[] mu = [0.5f, 0];
        float[] v = [4, 0.25f];
        var expected = -0.5 * (Math.Log(2 * Math.PI * 4) + 0.25 / 4) - 0.5 * (Math.Log(2 * Math.PI * 0.25) + 4 / 0.25);
        Assert.Equal(expected, LatentLogLikelihood.Compute(z, mu, v), 9);
    }

    [Fact]
    public void Stays_finite_where_the_density_underflows()
    {
        // Each dimension at 40σ: the density is ~e^-800 per dimension, 0 in double; its log is not.
        var d = 256;
        var ll = LatentLogLikelihood.Compute(Enumerable.Repeat(40f, d).ToArray(), new float[d], Enumerable.Repeat(1f, d).ToArray());
        Assert.True(double.IsFinite(ll));
        Assert.Equal(-0.5 * d * (Math.Log(2 * Math.PI) + 1600), ll, tolerance: 1e-6);
    }

    [Fact]
    public void Tensor_version_agrees_with_the_scalar_version()
    {
        var rng = new Random(3);
        var z = Enumerable.Range(0, 3 * 8).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var mu = Enumerable.Range(0, 8).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var v = Enumerable.Range(0, 8).Select(_ => (float)(rng.NextDouble() + 0.1)).ToArray();
        using var lt = LatentLogLikelihood.Compute(tensor(z, [3, 8]), tensor(mu), tensor(v));
        var values = lt.data<double>().ToArray();
        for (var i = 0; i < 3; i++)
            Assert.Equal(LatentLogLikelihood.Compute(z.AsSpan(i * 8, 8), mu, v), values[i], 4);
    }

    [Property(MaxTest = 300)]
    public bool Is_maximal_at_the_mean(NormalFloat shift, PositiveInt dim)
    {
        var d = dim.Get % 16 + 1;
        var v = Enumerable.Range(1, d).Select(i => (float)(0.1 * i)).ToArray();
        var mu = new float[d];
        var z = Enumerable.Repeat((float)Math.Clamp(shift.Get, -1e3, 1e3), d).ToArray();
        return LatentLogLikelihood.Compute(z, mu, v) <= LatentLogLikelihood.Compute(mu, mu, v) + 1e-9;
    }

    [Fact]
    public void Top_deviations_rank_by_standardised_distance()
    {
        var top = LatentLogLikelihood.TopDeviations([3, 1, -4], [0, 0, 0], [9, 0.01f, 4], 2);
        Assert.Equal(1, top[0].Dimension);
        Assert.Equal(10, top[0].Deviation, 4);
        Assert.Equal(2, top[1].Dimension);
    }
}
