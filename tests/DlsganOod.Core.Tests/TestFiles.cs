namespace DlsganOod.Core.Tests;

/// <summary>A temporary folder removed after the test.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "dlsgan-ood-tests", Guid.NewGuid().ToString("N"));
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

public static class Synthetic
{
    /// <summary>Digit-like blobs: a bright ring of random radius on black, 28×28.</summary>
    public static Data.ImageSet Rings(int count, int seed = 1, int size = 28)
    {
        var rng = new Random(seed);
        var pixels = new byte[count * size * size];
        for (var i = 0; i < count; i++)
        {
            var radius = 5 + rng.NextDouble() * 5;
            var cx = size / 2.0 + rng.NextDouble() * 2 - 1;
            var cy = size / 2.0 + rng.NextDouble() * 2 - 1;
            for (var y = 0; y < size; y++)
                for (var x = 0; x < size; x++)
                {
                    var d = Math.Abs(Math.Sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) - radius);
                    pixels[i * size * size + y * size + x] = (byte)Math.Clamp(255 * (1.5 - d), 0, 255);
                }
        }
        return new Data.ImageSet(count, size, size, 1, pixels, Enumerable.Range(0, count).Select(i => i % 10).ToArray());
    }

    /// <summary>A real PNG whose IHDR is rewritten to declare <paramref name="width"/>×<paramref name="height"/> (CRC fixed).</summary>
    public static byte[] PngDeclaring(int width, int height)
    {
        var png = Imaging.ImageCodec.EncodePng(new Imaging.DecodedImage(4, 4, 1, new byte[16]));
        // Signature (8) + length (4) + "IHDR" (4): width at 16, height at 20, CRC over type+data at 29.
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), height);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
        return png;
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }

}
