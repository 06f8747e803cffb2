using System.IO.Compression;
using DlsganOod.Core.Data;

namespace DlsganOod.Core.Tests;

public class IdxTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Images_and_labels_round_trip(bool gzip)
    {
        using var dir = new TempDir();
        var set = Synthetic.Rings(7);
        Idx.WriteImages(dir.File("img"), set, gzip);
        Idx.WriteLabels(dir.File("lbl"), set.Labels!, gzip);
        var back = Idx.ReadImages(dir.File("img"), dir.File("lbl"));
        Assert.Equal(set.Count, back.Count);
        Assert.Equal((28, 28, 1), (back.Height, back.Width, back.Channels));
        Assert.Equal(set.Pixels, back.Pixels);
        Assert.Equal(set.Labels, back.Labels);
    }

    [Fact]
    public void Written_header_is_the_standard_big_endian_one()
    {
        using var dir = new TempDir();
        Idx.WriteImages(dir.File("img"), Synthetic.Rings(3));
        var bytes = File.ReadAllBytes(dir.File("img"));
        Assert.Equal(new byte[] { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28 }, bytes[..16]);
        Assert.Equal(16 + 3 * 784, bytes.Length);
    }

    [Fact]
    public void Wrong_magic_names_the_file_and_the_problem()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("bad"), [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]);
        var ex = Assert.Throws<DataFormatException>(() => Idx.ReadImages(dir.File("bad")));
        Assert.Contains(dir.File("bad"), ex.Message, StringComparison.Ordinal);
        Assert.Contains("wrong magic", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_file_is_refused()
    {
        using var dir = new TempDir();
        Idx.WriteImages(dir.File("img"), Synthetic.Rings(4));
        var bytes = File.ReadAllBytes(dir.File("img"));
        File.WriteAllBytes(dir.File("img"), bytes[..(bytes.Length - 100)]);
        var ex = Assert.Throws<DataFormatException>(() => Idx.ReadImages(dir.File("img")));
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Label_count_mismatch_is_refused()
    {
        using var dir = new TempDir();
        Idx.WriteImages(dir.File("img"), Synthetic.Rings(4));
        Idx.WriteLabels(dir.File("lbl"), [1, 2, 3]);
        var ex = Assert.Throws<DataFormatException>(() => Idx.ReadImages(dir.File("img"), dir.File("lbl")));
        Assert.Contains("3 labels", ex.Message, StringComparison.Ordinal);
        Assert.Contains(dir.File("lbl"), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Labels_file_given_as_images_is_refused_by_dimension_count()
    {
        using var dir = new TempDir();
        Idx.WriteLabels(dir.File("lbl"), [1, 2, 3]);
        var ex = Assert.Throws<DataFormatException>(() => Idx.ReadImages(dir.File("lbl")));
        Assert.Contains("1 dimensions", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Corrupt_gzip_is_refused()
    {
        using var dir = new TempDir();
        using (var gz = new GZipStream(File.Create(dir.File("img.gz")), CompressionLevel.Fastest))
            gz.Write(new byte[1000]);
        var bytes = File.ReadAllBytes(dir.File("img.gz"));
        File.WriteAllBytes(dir.File("img.gz"), bytes[..12]);
        var ex = Assert.Throws<DataFormatException>(() => Idx.ReadImages(dir.File("img.gz")));
        Assert.Contains(dir.File("img.gz"), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_is_reported()
    {
        var ex = Assert.Throws<DataFormatException>(() => Idx.ReadImages("/nonexistent/file-idx3-ubyte"));
        Assert.Contains("not found", ex.Message, StringComparison.Ordinal);
    }
}
