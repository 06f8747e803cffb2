using DlsganOod.Core.Corruptions;

namespace DlsganOod.Core.Tests;

public class CorruptionTests
{
    public static TheoryData<string> All()
    {
        var data = new TheoryData<string>();
        foreach (var n in MnistC.Names) data.Add(n);
        return data;
    }

    [Fact]
    public void There_are_the_fifteen_mnist_c_corruptions()
    {
        Assert.Equal(15, MnistC.Names.Length);
        Assert.Equal(MnistC.Names.Length, MnistC.Names.Distinct().Count());
        Assert.All(MnistC.PaperAuroc.Keys, k => Assert.Contains(k, MnistC.Names));
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Keeps_shape_labels_and_changes_the_image(string name)
    {
        var clean = Synthetic.Rings(20, seed: 4);
        var corrupted = MnistC.Apply(name, clean, seed: 7);
        Assert.Equal((clean.Count, clean.Height, clean.Width, clean.Channels), (corrupted.Count, corrupted.Height, corrupted.Width, corrupted.Channels));
        Assert.Equal(clean.Labels, corrupted.Labels);
        var changed = Enumerable.Range(0, clean.Count).Count(i => !clean.Image(i).SequenceEqual(corrupted.Image(i)));
        Assert.True(changed >= 18, $"{name} changed only {changed} of 20 images");
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Is_deterministic_for_a_seed_and_varies_with_it(string name)
    {
        var clean = Synthetic.Rings(10, seed: 5);
        var a = MnistC.Apply(name, clean, seed: 1);
        var b = MnistC.Apply(name, clean, seed: 1);
        Assert.Equal(a.Pixels, b.Pixels);
        if (name is "stripe" or "canny_edges" or "brightness" or "scale") return; // no randomness in these
        var c = MnistC.Apply(name, clean, seed: 2);
        Assert.NotEqual(a.Pixels, c.Pixels);
    }

    [Fact]
    public void An_image_corrupts_the_same_alone_or_in_a_batch()
    {
        var clean = Synthetic.Rings(12, seed: 6);
        var batch = MnistC.Apply("spatter", clean, seed: 3);
        var alone = MnistC.Apply("spatter", clean.Select([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), seed: 3);
        Assert.Equal(batch.Pixels, alone.Pixels);
    }

    [Fact]
    public void Stripe_inverts_the_outer_columns_only()
    {
        var clean = Synthetic.Rings(1);
        var s = MnistC.Apply("stripe", clean, 0);
        for (var y = 0; y < 28; y++)
            for (var x = 0; x < 28; x++)
            {
                var expected = x < 7 || x >= 21 ? (byte)(255 - clean.Pixels[y * 28 + x]) : clean.Pixels[y * 28 + x];
                Assert.Equal(expected, s.Pixels[y * 28 + x]);
            }
    }

    [Fact]
    public void Brightness_adds_half_the_range()
    {
        var clean = Synthetic.Rings(1);
        var b = MnistC.Apply("brightness", clean, 0);
        Assert.Equal(127, b.Pixels[0]); // 0 + 0.5 → 127.5, truncated as the reference's cast
        Assert.All(b.Pixels, p => Assert.True(p >= 127));
    }

    [Fact]
    public void Shot_noise_leaves_black_background_black()
    {
        var clean = Synthetic.Rings(5);
        var s = MnistC.Apply("shot_noise", clean, 0);
        for (var i = 0; i < clean.Pixels.Length; i++)
            if (clean.Pixels[i] == 0) Assert.Equal(0, s.Pixels[i]);
    }

    [Fact]
    public void Canny_edges_are_binary()
    {
        var e = MnistC.Apply("canny_edges", Synthetic.Rings(3), 0);
        Assert.All(e.Pixels, p => Assert.True(p is 0 or 255));
        Assert.Contains(e.Pixels, p => p == 255);
    }

    [Fact]
    public void Unknown_corruption_is_refused_with_the_list()
    {
        var ex = Assert.Throws<ArgumentException>(() => MnistC.Apply("sparkles", Synthetic.Rings(1), 0));
        Assert.Contains("shot_noise", ex.Message, StringComparison.Ordinal);
    }
}
