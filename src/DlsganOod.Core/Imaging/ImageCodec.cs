using SkiaSharp;

namespace DlsganOod.Core.Imaging;

/// <summary>Limits applied before any pixel is decoded, so a small file that declares huge dimensions costs nothing.</summary>
public sealed record DecodeLimits(long MaxBytes = 8 * 1024 * 1024, long MaxPixels = 4096L * 4096)
{
    public static DecodeLimits Default { get; } = new();
}

/// <summary>A decoded 8-bit image, interleaved H × W × C (C = 1 grey or 3 RGB).</summary>
public sealed record DecodedImage(int Width, int Height, int Channels, byte[] Pixels);

/// <summary>Why an input could not become an image; <see cref="Code"/> is stable for dead-letter headers and tests.</summary>
public sealed class ImageDecodeException : Exception
{
    public ImageDecodeException(string code, string message) : base(message) => Code = code;
    public ImageDecodeException(string code, string message, Exception inner) : base(message, inner) => Code = code;
    public ImageDecodeException() : this("unreadable", "unreadable image") { }
    public ImageDecodeException(string message) : this("unreadable", message) { }
    public ImageDecodeException(string message, Exception inner) : this("unreadable", message, inner) { }
    public string Code { get; }
}

public static class ImageCodec
{
    public const string CodeEmpty = "empty";
    public const string CodeTooLarge = "too_large";
    public const string CodeUnreadable = "unreadable";
    public const string CodeBadRaw = "bad_raw";
    public const string CodeUnsupported = "unsupported";

    /// <summary>Decodes PNG or JPEG (anything Skia reads) to grey if the file is grey, else RGB.</summary>
    public static DecodedImage Decode(ReadOnlySpan<byte> data, DecodeLimits? limits = null)
    {
        limits ??= DecodeLimits.Default;
        if (data.IsEmpty) throw new ImageDecodeException(CodeEmpty, "empty payload");
        if (data.Length > limits.MaxBytes)
            throw new ImageDecodeException(CodeTooLarge, $"{data.Length} bytes exceeds the limit of {limits.MaxBytes}");
        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData);
        if (codec is null) throw new ImageDecodeException(CodeUnreadable, "not a decodable PNG or JPEG image");
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0)
            throw new ImageDecodeException(CodeUnreadable, $"declares invalid dimensions {info.Width}x{info.Height}");
        if ((long)info.Width * info.Height > limits.MaxPixels)
            throw new ImageDecodeException(CodeTooLarge, $"declares {info.Width}x{info.Height} = {(long)info.Width * info.Height} pixels, over the limit of {limits.MaxPixels}");
        var grey = info.ColorType == SKColorType.Gray8;
        var target = new SKImageInfo(info.Width, info.Height, grey ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(target);
        var result = codec.GetPixels(target, bitmap.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new ImageDecodeException(CodeUnreadable, $"decoding failed: {result}");
        if (result == SKCodecResult.IncompleteInput)
            throw new ImageDecodeException(CodeUnreadable, "truncated image data");
        var src = bitmap.GetPixelSpan();
        if (grey)
        {
            var pixels = new byte[info.Width * info.Height];
            for (var y = 0; y < info.Height; y++)
                src.Slice(y * bitmap.RowBytes, info.Width).CopyTo(pixels.AsSpan(y * info.Width));
            return new DecodedImage(info.Width, info.Height, 1, pixels);
        }
        var rgb = new byte[info.Width * info.Height * 3];
        for (var y = 0; y < info.Height; y++)
        {
            var row = src.Slice(y * bitmap.RowBytes, info.Width * 4);
            for (var x = 0; x < info.Width; x++)
            {
                // Transparent pixels are composited on black, the background of MNIST-like data.
                var a = row[x * 4 + 3];
                for (var c = 0; c < 3; c++)
                    rgb[(y * info.Width + x) * 3 + c] = (byte)((row[x * 4 + c] * a + 127) / 255);
            }
        }
        return new DecodedImage(info.Width, info.Height, 3, rgb);
    }

    /// <summary>Raw 8-bit pixels as announced by <c>image/x-raw;width=W;height=H;channels=C</c>.</summary>
    public static DecodedImage FromRaw(ReadOnlySpan<byte> data, int width, int height, int channels, DecodeLimits? limits = null)
    {
        limits ??= DecodeLimits.Default;
        if (data.IsEmpty) throw new ImageDecodeException(CodeEmpty, "empty payload");
        if (width <= 0 || height <= 0) throw new ImageDecodeException(CodeBadRaw, $"invalid raw dimensions {width}x{height}");
        if (channels is not (1 or 3)) throw new ImageDecodeException(CodeUnsupported, $"unsupported channel count {channels} (1 or 3)");
        if ((long)width * height > limits.MaxPixels)
            throw new ImageDecodeException(CodeTooLarge, $"{width}x{height} exceeds the pixel limit of {limits.MaxPixels}");
        var expected = (long)width * height * channels;
        if (data.Length != expected)
            throw new ImageDecodeException(CodeBadRaw, $"raw payload has {data.Length} bytes, expected {expected} for {width}x{height}x{channels}");
        return new DecodedImage(width, height, channels, data.ToArray());
    }

    public static byte[] EncodePng(DecodedImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var info = new SKImageInfo(image.Width, image.Height, image.Channels == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var dst = bitmap.GetPixelSpan();
        for (var y = 0; y < image.Height; y++)
        {
            if (image.Channels == 1)
            {
                image.Pixels.AsSpan(y * image.Width, image.Width).CopyTo(dst.Slice(y * bitmap.RowBytes));
                continue;
            }
            for (var x = 0; x < image.Width; x++)
            {
                var o = y * bitmap.RowBytes + x * 4;
                var s = (y * image.Width + x) * 3;
                dst[o] = image.Pixels[s];
                dst[o + 1] = image.Pixels[s + 1];
                dst[o + 2] = image.Pixels[s + 2];
                dst[o + 3] = 255;
            }
        }
        using var img = SKImage.FromBitmap(bitmap);
        using var png = img.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    public static byte[] EncodeJpeg(DecodedImage image, int quality = 95)
    {
        ArgumentNullException.ThrowIfNull(image);
        var rgb = image.Channels == 3 ? image : ToChannels(image, 3);
        var info = new SKImageInfo(rgb.Width, rgb.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var dst = bitmap.GetPixelSpan();
        for (var y = 0; y < rgb.Height; y++)
            for (var x = 0; x < rgb.Width; x++)
            {
                var o = y * bitmap.RowBytes + x * 4;
                var s = (y * rgb.Width + x) * 3;
                dst[o] = rgb.Pixels[s];
                dst[o + 1] = rgb.Pixels[s + 1];
                dst[o + 2] = rgb.Pixels[s + 2];
                dst[o + 3] = 255;
            }
        using var img = SKImage.FromBitmap(bitmap);
        using var jpg = img.Encode(SKEncodedImageFormat.Jpeg, quality);
        return jpg.ToArray();
    }

    /// <summary>Grey ↔ RGB. RGB → grey uses ITU-R BT.601 luma, as most image tools do.</summary>
    public static DecodedImage ToChannels(DecodedImage image, int channels)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels == channels) return image;
        var n = image.Width * image.Height;
        var result = new byte[n * channels];
        if (channels == 1)
        {
            for (var i = 0; i < n; i++)
                result[i] = (byte)Math.Clamp(Math.Round(0.299 * image.Pixels[i * 3] + 0.587 * image.Pixels[i * 3 + 1] + 0.114 * image.Pixels[i * 3 + 2]), 0, 255);
        }
        else
        {
            for (var i = 0; i < n; i++)
                result[i * 3] = result[i * 3 + 1] = result[i * 3 + 2] = image.Pixels[i];
        }
        return new DecodedImage(image.Width, image.Height, channels, result);
    }

    /// <summary>Bilinear resize with pixel-centre alignment; area-averages first when shrinking by 2× or more.</summary>
    public static DecodedImage Resize(DecodedImage image, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Width == width && image.Height == height) return image;
        var current = image;
        while (current.Width >= 2 * width && current.Height >= 2 * height)
            current = HalveBox(current);
        if (current.Width == width && current.Height == height) return current;
        var c = current.Channels;
        var result = new byte[width * height * c];
        var sx = (double)current.Width / width;
        var sy = (double)current.Height / height;
        for (var y = 0; y < height; y++)
        {
            var fy = Math.Clamp((y + 0.5) * sy - 0.5, 0, current.Height - 1);
            var y0 = (int)fy;
            var y1 = Math.Min(y0 + 1, current.Height - 1);
            var wy = fy - y0;
            for (var x = 0; x < width; x++)
            {
                var fx = Math.Clamp((x + 0.5) * sx - 0.5, 0, current.Width - 1);
                var x0 = (int)fx;
                var x1 = Math.Min(x0 + 1, current.Width - 1);
                var wx = fx - x0;
                for (var ch = 0; ch < c; ch++)
                {
                    double P(int yy, int xx) => current.Pixels[(yy * current.Width + xx) * c + ch];
                    var v = (1 - wy) * ((1 - wx) * P(y0, x0) + wx * P(y0, x1)) + wy * ((1 - wx) * P(y1, x0) + wx * P(y1, x1));
                    result[(y * width + x) * c + ch] = (byte)Math.Clamp(Math.Round(v), 0, 255);
                }
            }
        }
        return new DecodedImage(width, height, c, result);
    }

    private static DecodedImage HalveBox(DecodedImage image)
    {
        var w = image.Width / 2;
        var h = image.Height / 2;
        var c = image.Channels;
        var result = new byte[w * h * c];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
                for (var ch = 0; ch < c; ch++)
                {
                    var sum = image.Pixels[((2 * y) * image.Width + 2 * x) * c + ch] + image.Pixels[((2 * y) * image.Width + 2 * x + 1) * c + ch]
                        + image.Pixels[((2 * y + 1) * image.Width + 2 * x) * c + ch] + image.Pixels[((2 * y + 1) * image.Width + 2 * x + 1) * c + ch];
                    result[(y * w + x) * c + ch] = (byte)((sum + 2) / 4);
                }
        return new DecodedImage(w, h, c, result);
    }
}

/// <summary>Composes encoded pictures (plots, image grids) into one PNG.</summary>
public static class PngComposer
{
    public static byte[] StackVertically(IReadOnlyList<byte[]> encodedImages) => Grid(encodedImages, 1);

    /// <summary>Row-major grid of equally sized pictures, <paramref name="columns"/> per row.</summary>
    public static byte[] Grid(IReadOnlyList<byte[]> encodedImages, int columns)
    {
        ArgumentNullException.ThrowIfNull(encodedImages);
        ArgumentOutOfRangeException.ThrowIfLessThan(columns, 1);
        var bitmaps = encodedImages.Select(SKBitmap.Decode).ToArray();
        try
        {
            var cellW = bitmaps.Max(b => b.Width);
            var cellH = bitmaps.Max(b => b.Height);
            var rows = (bitmaps.Length + columns - 1) / columns;
            var cols = Math.Min(columns, bitmaps.Length);
            using var surface = SKSurface.Create(new SKImageInfo(cols * cellW, rows * cellH, SKColorType.Rgba8888, SKAlphaType.Premul));
            surface.Canvas.Clear(SKColors.White);
            for (var i = 0; i < bitmaps.Length; i++)
                surface.Canvas.DrawBitmap(bitmaps[i], i % columns * cellW, i / columns * cellH);
            using var image = surface.Snapshot();
            using var png = image.Encode(SKEncodedImageFormat.Png, 100);
            return png.ToArray();
        }
        finally
        {
            foreach (var b in bitmaps) b.Dispose();
        }
    }
}
