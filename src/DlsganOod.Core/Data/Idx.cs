using System.Buffers.Binary;
using System.IO.Compression;

namespace DlsganOod.Core.Data;

/// <summary>
/// The IDX format of MNIST and Fashion-MNIST: big-endian magic (0x0000_08_NN, NN = number of dimensions),
/// dimension sizes, then unsigned bytes. Files may be gzip-compressed (detected by content, not name).
/// </summary>
public static class Idx
{
    private const int UbyteType = 0x08;

    public static ImageSet ReadImages(string path, string? labelsPath = null)
    {
        var data = ReadAll(path);
        var dims = ReadHeader(path, data, expectedDims: 3, "image");
        var (count, height, width) = (dims[0], dims[1], dims[2]);
        long expected = 4 + 4L * 3 + (long)count * height * width;
        if (data.Length < expected)
            throw new DataFormatException(path, $"truncated: header declares {count} images of {height}x{width} ({expected} bytes) but the file has {data.Length} bytes");
        if (height == 0 || width == 0)
            throw new DataFormatException(path, $"declares empty images ({height}x{width})");
        var pixels = data.AsSpan(16, checked(count * height * width)).ToArray();
        int[]? labels = null;
        if (labelsPath is not null)
        {
            labels = ReadLabels(labelsPath);
            if (labels.Length != count)
                throw new DataFormatException(labelsPath, $"has {labels.Length} labels but {path} has {count} images");
        }
        return new ImageSet(count, height, width, 1, pixels, labels);
    }

    public static int[] ReadLabels(string path)
    {
        var data = ReadAll(path);
        var dims = ReadHeader(path, data, expectedDims: 1, "label");
        var count = dims[0];
        if (data.Length < 8L + count)
            throw new DataFormatException(path, $"truncated: header declares {count} labels but the file has {data.Length - 8} label bytes");
        return data.AsSpan(8, count).ToArray().Select(b => (int)b).ToArray();
    }

    public static void WriteImages(string path, ImageSet images, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Channels != 1)
            throw new ArgumentException("IDX image files hold one channel; convert to grey first.", nameof(images));
        using var stream = Create(path, gzip);
        Span<byte> header = stackalloc byte[16];
        BinaryPrimitives.WriteInt32BigEndian(header, UbyteType << 8 | 3);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], images.Count);
        BinaryPrimitives.WriteInt32BigEndian(header[8..], images.Height);
        BinaryPrimitives.WriteInt32BigEndian(header[12..], images.Width);
        stream.Write(header);
        stream.Write(images.Pixels);
    }

    public static void WriteLabels(string path, IReadOnlyList<int> labels, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(labels);
        using var stream = Create(path, gzip);
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, UbyteType << 8 | 1);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], labels.Count);
        stream.Write(header);
        stream.Write(labels.Select(l => checked((byte)l)).ToArray());
    }

    /// <summary>True if the file starts like an IDX file (plain or gzip); used to route an input path.</summary>
    public static bool LooksLikeIdx(string path)
    {
        var name = System.IO.Path.GetFileName(path).ToLowerInvariant();
        return name.Contains("idx", StringComparison.Ordinal) || name.EndsWith(".ubyte", StringComparison.Ordinal) || name.EndsWith(".ubyte.gz", StringComparison.Ordinal);
    }

    private static Stream Create(string path, bool gzip)
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        Stream file = File.Create(path);
        return gzip ? new GZipStream(file, CompressionLevel.Optimal) : file;
    }

    private static byte[] ReadAll(string path)
    {
        if (!File.Exists(path)) throw new DataFormatException(path, "file not found");
        var raw = File.ReadAllBytes(path);
        if (raw.Length >= 2 && raw[0] == 0x1f && raw[1] == 0x8b)
        {
            try
            {
                using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
                using var output = new MemoryStream();
                gz.CopyTo(output);
                return output.ToArray();
            }
            catch (InvalidDataException ex)
            {
                throw new DataFormatException(path, $"corrupt gzip data ({ex.Message})", ex);
            }
        }
        return raw;
    }

    private static int[] ReadHeader(string path, byte[] data, int expectedDims, string kind)
    {
        if (data.Length < 4)
            throw new DataFormatException(path, $"too short to be an IDX {kind} file ({data.Length} bytes)");
        var magic = BinaryPrimitives.ReadInt32BigEndian(data);
        if ((magic >> 16) != 0 || ((magic >> 8) & 0xff) != UbyteType)
            throw new DataFormatException(path, $"wrong magic number 0x{magic:x8}: not an unsigned-byte IDX file");
        var dims = magic & 0xff;
        if (dims != expectedDims)
            throw new DataFormatException(path, $"has {dims} dimensions, expected {expectedDims} for an IDX {kind} file (magic 0x{magic:x8})");
        if (data.Length < 4 + 4 * dims)
            throw new DataFormatException(path, "truncated inside the header");
        var sizes = new int[dims];
        for (var i = 0; i < dims; i++)
        {
            sizes[i] = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4 + 4 * i));
            if (sizes[i] < 0) throw new DataFormatException(path, $"negative dimension size {sizes[i]}");
        }
        return sizes;
    }
}
