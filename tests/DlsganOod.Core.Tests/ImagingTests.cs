using DlsganOod.Core.Data;
using DlsganOod.Core.Imaging;

namespace DlsganOod.Core.Tests;

public class ImagingTests
{
    private static DecodedImage Gradient(int w, int h, int channels)
    {
        var px = new byte[w * h * channels];
        for (var i = 0; i < px.Length; i++) px[i] = (byte)(i * 7 % 256);
        return new DecodedImage(w, h, channels, px);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Png_round_trips_losslessly(int channels)
    {
        var img = Gradient(28, 28, channels);
        var back = ImageCodec.Decode(ImageCodec.EncodePng(img));
        Assert.Equal((28, 28), (back.Width, back.Height));
        Assert.Equal(img.Pixels, ImageCodec.ToChannels(back, channels).Pixels);
    }

    [Fact]
    public void Jpeg_decodes_to_the_right_size()
    {
        var back = ImageCodec.Decode(ImageCodec.EncodeJpeg(Gradient(40, 30, 3)));
        Assert.Equal((40, 30), (back.Width, back.Height));
    }

    [Fact]
    public void Empty_and_random_bytes_are_refused_with_codes()
    {
        Assert.Equal(ImageCodec.CodeEmpty, Assert.Throws<ImageDecodeException>(() => ImageCodec.Decode([])).Code);
        var noise = new byte[500];
        new Random(1).NextBytes(noise);
        Assert.Equal(ImageCodec.CodeUnreadable, Assert.Throws<ImageDecodeException>(() => ImageCodec.Decode(noise)).Code);
    }

    [Fact]
    public void Truncated_png_is_refused()
    {
        var png = ImageCodec.EncodePng(Gradient(64, 64, 1));
        var ex = Assert.Throws<ImageDecodeException>(() => ImageCodec.Decode(png.AsSpan(0, png.Length / 2)));
        Assert.Equal(ImageCodec.CodeUnreadable, ex.Code);
    }

    [Fact]
    public void Pixel_limit_is_checked_before_decoding()
    {
        var png = ImageCodec.EncodePng(Gradient(100, 100, 1));
        var ex = Assert.Throws<ImageDecodeException>(() => ImageCodec.Decode(png, new DecodeLimits(MaxPixels: 5000)));
        Assert.Equal(ImageCodec.CodeTooLarge, ex.Code);
        Assert.Contains("100x100", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Byte_limit_is_checked()
    {
        var ex = Assert.Throws<ImageDecodeException>(() => ImageCodec.Decode(new byte[2000], new DecodeLimits(MaxBytes: 1000)));
        Assert.Equal(ImageCodec.CodeTooLarge, ex.Code);
    }

    [Fact]
    public void Raw_pixels_must_match_their_declared_size()
    {
        Assert.Equal(784, ImageCodec.FromRaw(new byte[784], 28, 28, 1).Pixels.Length);
        Assert.Equal(ImageCodec.CodeBadRaw, Assert.Throws<ImageDecodeException>(() => ImageCodec.FromRaw(new byte[783], 28, 28, 1)).Code);
        Assert.Equal(ImageCodec.CodeUnsupported, Assert.Throws<ImageDecodeException>(() => ImageCodec.FromRaw(new byte[28 * 28 * 4], 28, 28, 4)).Code);
    }

    [Fact]
    public void Resize_keeps_constant_images_constant_and_reaches_the_size()
    {
        var flat = new DecodedImage(56, 56, 1, Enumerable.Repeat((byte)200, 56 * 56).ToArray());
        var small = ImageCodec.Resize(flat, 28, 28);
        Assert.Equal((28, 28), (small.Width, small.Height));
        Assert.All(small.Pixels, p => Assert.Equal(200, p));
        var odd = ImageCodec.Resize(flat, 17, 23);
        Assert.Equal((17, 23), (odd.Width, odd.Height));
    }

    [Fact]
    public void Rgb_to_grey_uses_luma()
    {
        var red = new DecodedImage(1, 1, 3, [255, 0, 0]);
        Assert.Equal(76, ImageCodec.ToChannels(red, 1).Pixels[0]);
    }

    [Fact]
    public void Image_folder_reads_files_in_name_order_with_names_as_ids()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("b.png"), ImageCodec.EncodePng(Gradient(28, 28, 1)));
        File.WriteAllBytes(dir.File("a.png"), ImageCodec.EncodePng(Gradient(56, 56, 3)));
        File.WriteAllText(dir.File("notes.txt"), "ignored");
        var set = ImageSources.Open(dir.Path, (28, 28, 1));
        Assert.Equal(["a.png", "b.png"], set.Ids!);
        Assert.Equal((28, 28, 1), (set.Height, set.Width, set.Channels));
    }

    [Fact]
    public void Unreadable_image_in_a_folder_names_the_file()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("broken.png"), [1, 2, 3, 4]);
        var ex = Assert.Throws<DataFormatException>(() => ImageSources.Open(dir.Path));
        Assert.Contains("broken.png", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Preprocessing_pads_and_scales_to_minus_one_one()
    {
        var p = Preprocessing.Mnist;
        var set = new ImageSet(1, 28, 28, 1, Enumerable.Repeat((byte)255, 784).ToArray());
        var x = p.ToModelInput(set, 0, 1);
        Assert.Equal(32 * 32, x.Length);
        Assert.Equal(-1f, x[0]);                 // padding = black
        Assert.Equal(1f, x[2 * 32 + 2], 6);      // first real pixel
        Assert.Equal(-1f, x[31 * 32 + 31]);
        Assert.Equal(set.Pixels, p.FromModelOutput(x));
    }
}

public class DecompressionBombTests
{
    [Fact]
    public void A_small_png_declaring_huge_dimensions_is_refused_before_decoding()
    {
        var bomb = Synthetic.PngDeclaring(100_000, 100_000);
        Assert.True(bomb.Length < 200);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var ex = Assert.Throws<ImageDecodeException>(() => ImageCodec.Decode(bomb));
        Assert.Equal(ImageCodec.CodeTooLarge, ex.Code);
        Assert.Contains("100000x100000", ex.Message, StringComparison.Ordinal);
        Assert.True(sw.ElapsedMilliseconds < 5000);
    }
}
