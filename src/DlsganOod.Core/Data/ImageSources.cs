using DlsganOod.Core.Imaging;

namespace DlsganOod.Core.Data;

/// <summary>
/// Opens what a user points at: an IDX file (plain or .gz), one PNG/JPEG, or a folder of them.
/// Images are brought to one size and channel count so they form an <see cref="ImageSet"/>; ids are
/// file names for images and indices for IDX, in input order (file names sorted ordinally).
/// </summary>
public static class ImageSources
{
    private static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg"];

    public static bool IsImageFile(string path) =>
        ImageExtensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant());

    /// <param name="size">Target (height, width, channels); null keeps the first image's shape.</param>
    public static ImageSet Open(string path, (int Height, int Width, int Channels)? size = null, DecodeLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            var files = Directory.EnumerateFiles(path).Where(IsImageFile).OrderBy(f => System.IO.Path.GetFileName(f), StringComparer.Ordinal).ToArray();
            if (files.Length == 0) throw new DataFormatException(path, "folder contains no .png, .jpg or .jpeg files");
            return FromFiles(files, size, limits);
        }
        if (!File.Exists(path)) throw new DataFormatException(path, "no such file or folder");
        if (IsImageFile(path)) return FromFiles([path], size, limits);
        var images = Idx.ReadImages(path);
        if (size is { } s && (s.Height != images.Height || s.Width != images.Width || s.Channels != 1))
            return Convert(images, s);
        return images;
    }

    public static ImageSet FromFiles(IReadOnlyList<string> files, (int Height, int Width, int Channels)? size = null, DecodeLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        var decoded = new List<DecodedImage>(files.Count);
        foreach (var file in files)
        {
            try
            {
                decoded.Add(ImageCodec.Decode(File.ReadAllBytes(file), limits));
            }
            catch (ImageDecodeException ex)
            {
                throw new DataFormatException(file, $"unreadable image ({ex.Message})", ex);
            }
        }
        var target = size ?? (decoded[0].Height, decoded[0].Width, decoded[0].Channels);
        var pixels = new byte[(long)decoded.Count * target.Height * target.Width * target.Channels];
        var stride = target.Height * target.Width * target.Channels;
        for (var i = 0; i < decoded.Count; i++)
        {
            var img = Fit(decoded[i], target);
            img.Pixels.CopyTo(pixels.AsSpan(i * stride, stride));
        }
        var ids = files.Select(f => System.IO.Path.GetFileName(f)).ToArray();
        return new ImageSet(decoded.Count, target.Height, target.Width, target.Channels, pixels, ids: ids);
    }

    public static DecodedImage Fit(DecodedImage image, (int Height, int Width, int Channels) target)
    {
        ArgumentNullException.ThrowIfNull(image);
        var resized = ImageCodec.Resize(image, target.Width, target.Height);
        return ImageCodec.ToChannels(resized, target.Channels);
    }

    private static ImageSet Convert(ImageSet images, (int Height, int Width, int Channels) target)
    {
        var stride = target.Height * target.Width * target.Channels;
        var pixels = new byte[(long)images.Count * stride];
        for (var i = 0; i < images.Count; i++)
        {
            var img = new DecodedImage(images.Width, images.Height, images.Channels, images.Image(i).ToArray());
            Fit(img, target).Pixels.CopyTo(pixels.AsSpan(i * stride, stride));
        }
        return new ImageSet(images.Count, target.Height, target.Width, target.Channels, pixels, images.Labels, images.Ids);
    }
}
