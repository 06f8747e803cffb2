namespace DlsganOod.Core.Data;

/// <summary>
/// A set of 8-bit images of one size, stored interleaved (N × H × W × C), with optional labels and ids.
/// Bytes rather than floats: this is what IDX, PNG and Kafka messages carry, and it keeps 70k images at 55 MB.
/// </summary>
public sealed class ImageSet
{
    public ImageSet(int count, int height, int width, int channels, byte[] pixels, int[]? labels = null, string[]? ids = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Only 1 (grey) or 3 (RGB) channels are supported.");
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.LongLength != (long)count * height * width * channels)
            throw new ArgumentException($"Expected {(long)count * height * width * channels} pixel bytes, got {pixels.LongLength}.", nameof(pixels));
        if (labels is not null && labels.Length != count)
            throw new ArgumentException($"Expected {count} labels, got {labels.Length}.", nameof(labels));
        if (ids is not null && ids.Length != count)
            throw new ArgumentException($"Expected {count} ids, got {ids.Length}.", nameof(ids));
        Count = count;
        Height = height;
        Width = width;
        Channels = channels;
        Pixels = pixels;
        Labels = labels;
        Ids = ids;
    }

    public int Count { get; }
    public int Height { get; }
    public int Width { get; }
    public int Channels { get; }
    public byte[] Pixels { get; }
    public int[]? Labels { get; }
    public string[]? Ids { get; }
    public int ImageSize => Height * Width * Channels;

    public Span<byte> Image(int index) => Pixels.AsSpan(index * ImageSize, ImageSize);

    public string IdOf(int index) => Ids?[index] ?? index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A new set holding the images at <paramref name="indices"/>, in that order.</summary>
    public ImageSet Select(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var pixels = new byte[(long)indices.Count * ImageSize];
        for (var i = 0; i < indices.Count; i++)
            Image(indices[i]).CopyTo(pixels.AsSpan(i * ImageSize, ImageSize));
        return new ImageSet(indices.Count, Height, Width, Channels, pixels,
            Labels is null ? null : indices.Select(i => Labels[i]).ToArray(),
            Ids is null ? null : indices.Select(i => Ids[i]).ToArray());
    }

    public ImageSet Take(int count) => Select(Enumerable.Range(0, Math.Min(count, Count)).ToArray());

    public static ImageSet Concat(IReadOnlyList<ImageSet> sets)
    {
        ArgumentNullException.ThrowIfNull(sets);
        if (sets.Count == 0) throw new ArgumentException("No image sets to concatenate.", nameof(sets));
        var first = sets[0];
        if (sets.Any(s => s.Height != first.Height || s.Width != first.Width || s.Channels != first.Channels))
            throw new ArgumentException("Image sets differ in size or channels.", nameof(sets));
        var pixels = sets.SelectMany(s => s.Pixels).ToArray();
        var labels = sets.All(s => s.Labels is not null) ? sets.SelectMany(s => s.Labels!).ToArray() : null;
        var ids = sets.All(s => s.Ids is not null) ? sets.SelectMany(s => s.Ids!).ToArray() : null;
        return new ImageSet(sets.Sum(s => s.Count), first.Height, first.Width, first.Channels, pixels, labels, ids);
    }

    /// <summary>SHA-256 over shape and pixels: identifies the data a model was trained or calibrated on.</summary>
    public string Fingerprint()
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        Span<byte> header = stackalloc byte[16];
        BitConverter.TryWriteBytes(header[..4], Count);
        BitConverter.TryWriteBytes(header[4..8], Height);
        BitConverter.TryWriteBytes(header[8..12], Width);
        BitConverter.TryWriteBytes(header[12..], Channels);
        sha.AppendData(header);
        sha.AppendData(Pixels);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
