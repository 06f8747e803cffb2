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
}
