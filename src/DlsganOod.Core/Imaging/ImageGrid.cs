using SkiaSharp;

namespace DlsganOod.Core.Imaging;

/// <summary>Rows of small images (e.g. one row per corruption), scaled up with nearest-neighbour, optionally labelled.</summary>
public static class ImageGrid
{
    public static byte[] Render(IReadOnlyList<(string Label, IReadOnlyList<DecodedImage> Images)> rows, int scale = 3, int labelWidth = 130)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0 || rows.All(r => r.Images.Count == 0)) throw new ArgumentException("Nothing to draw.", nameof(rows));
        var cellW = rows.SelectMany(r => r.Images).Max(i => i.Width) * scale;
        var cellH = rows.SelectMany(r => r.Images).Max(i => i.Height) * scale;
        const int gap = 2;
        var cols = rows.Max(r => r.Images.Count);
        var hasLabels = rows.Any(r => !string.IsNullOrEmpty(r.Label));
        var left = hasLabels ? labelWidth : 0;
        var width = left + cols * (cellW + gap) + gap;
        var height = rows.Count * (cellH + gap) + gap;
        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(SKTypeface.Default, 14);
        using var textPaint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        for (var r = 0; r < rows.Count; r++)
        {
            var y = gap + r * (cellH + gap);
            if (hasLabels)
                canvas.DrawText(rows[r].Label, 4, y + cellH / 2f + 5, SKTextAlign.Left, font, textPaint);
            for (var c = 0; c < rows[r].Images.Count; c++)
            {
                var img = ImageCodec.ToChannels(rows[r].Images[c], 3);
                using var bitmap = new SKBitmap(new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
                var dst = bitmap.GetPixelSpan();
                for (var p = 0; p < img.Width * img.Height; p++)
                {
                    var row = p / img.Width;
                    var o = row * bitmap.RowBytes + (p % img.Width) * 4;
                    dst[o] = img.Pixels[p * 3];
                    dst[o + 1] = img.Pixels[p * 3 + 1];
                    dst[o + 2] = img.Pixels[p * 3 + 2];
                    dst[o + 3] = 255;
                }
                using var image = SKImage.FromBitmap(bitmap);
                var x = left + gap + c * (cellW + gap);
                canvas.DrawImage(image, new SKRect(x, y, x + cellW, y + cellH), new SKSamplingOptions(SKFilterMode.Nearest));
            }
        }
        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    public static IReadOnlyList<DecodedImage> FromSet(Data.ImageSet set, int count)
    {
        ArgumentNullException.ThrowIfNull(set);
        return Enumerable.Range(0, Math.Min(count, set.Count))
            .Select(i => new DecodedImage(set.Width, set.Height, set.Channels, set.Image(i).ToArray())).ToArray();
    }
}
