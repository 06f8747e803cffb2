using System.Text.Json.Serialization;
using DlsganOod.Core.Imaging;

namespace DlsganOod.Core.Data;

/// <summary>
/// How raw 8-bit images become model input. Stored in every checkpoint and applied from there, so nobody
/// restates it by hand. Default = the reference implementation: 28×28 grey, zero-padded by 2 px to 32×32,
/// pixels scaled to [-1, 1] (x/127.5 − 1).
/// </summary>
public sealed record Preprocessing
{
    public int InputHeight { get; init; } = 28;
    public int InputWidth { get; init; } = 28;
    public int Channels { get; init; } = 1;
    public int Pad { get; init; } = 2;
    public float Scale { get; init; } = 1f / 127.5f;
    public float Offset { get; init; } = -1f;

    [JsonIgnore] public int Height => InputHeight + 2 * Pad;
    [JsonIgnore] public int Width => InputWidth + 2 * Pad;
    [JsonIgnore] public int InputSize => InputHeight * InputWidth * Channels;
    [JsonIgnore] public int ModelSize => Height * Width * Channels;

    public static Preprocessing Mnist { get; } = new();

    public void Validate()
    {
        if (InputHeight < 1 || InputWidth < 1) throw new InvalidDataException($"preprocessing: invalid input size {InputHeight}x{InputWidth}");
        if (Channels is not (1 or 3)) throw new InvalidDataException($"preprocessing: channels must be 1 or 3, not {Channels}");
        if (Pad < 0) throw new InvalidDataException($"preprocessing: negative padding {Pad}");
        if (!float.IsFinite(Scale) || Scale == 0 || !float.IsFinite(Offset)) throw new InvalidDataException("preprocessing: scale/offset must be finite and scale non-zero");
    }

    /// <summary>Brings a set to the input size and channels this preprocessing expects.</summary>
    public ImageSet Conform(ImageSet images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Height == InputHeight && images.Width == InputWidth && images.Channels == Channels) return images;
        var pixels = new byte[(long)images.Count * InputSize];
        for (var i = 0; i < images.Count; i++)
            ConformOne(new DecodedImage(images.Width, images.Height, images.Channels, images.Image(i).ToArray()))
                .Pixels.CopyTo(pixels.AsSpan(i * InputSize, InputSize));
        return new ImageSet(images.Count, InputHeight, InputWidth, Channels, pixels, images.Labels, images.Ids);
    }

    public DecodedImage ConformOne(DecodedImage image) => ImageSources.Fit(image, (InputHeight, InputWidth, Channels));

    /// <summary>Planar model input (N × C × H × W) for images [start, start+count) of a conformed set.</summary>
    public float[] ToModelInput(ImageSet images, int start, int count)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Height != InputHeight || images.Width != InputWidth || images.Channels != Channels)
            throw new ArgumentException($"Images are {images.Height}x{images.Width}x{images.Channels}; conform them to {InputHeight}x{InputWidth}x{Channels} first.", nameof(images));
        var result = new float[(long)count * ModelSize];
        for (var i = 0; i < count; i++)
            WriteModelInput(images.Image(start + i), result.AsSpan(i * ModelSize, ModelSize));
        return result;
    }

    /// <summary>One conformed image (H × W × C bytes) into planar, padded, scaled floats.</summary>
    public void WriteModelInput(ReadOnlySpan<byte> image, Span<float> destination)
    {
        var background = Offset; // a zero pixel after scaling: padding matches MNIST's black border
        destination.Fill(background);
        for (var c = 0; c < Channels; c++)
            for (var y = 0; y < InputHeight; y++)
                for (var x = 0; x < InputWidth; x++)
                    destination[(c * Height + y + Pad) * Width + x + Pad] = image[(y * InputWidth + x) * Channels + c] * Scale + Offset;
    }

    /// <summary>Model-space float image (C × H × W) back to 8-bit H × W × C without the padding; for pictures.</summary>
    public byte[] FromModelOutput(ReadOnlySpan<float> planar, bool keepPadding = false)
    {
        var h = keepPadding ? Height : InputHeight;
        var w = keepPadding ? Width : InputWidth;
        var off = keepPadding ? 0 : Pad;
        var result = new byte[h * w * Channels];
        for (var c = 0; c < Channels; c++)
            for (var y = 0; y < h; y++)
                for (var x = 0; x < w; x++)
                {
                    var v = (planar[(c * Height + y + off) * Width + x + off] - Offset) / Scale;
                    result[(y * w + x) * Channels + c] = (byte)Math.Clamp(Math.Round(v), 0, 255);
                }
        return result;
    }
}
