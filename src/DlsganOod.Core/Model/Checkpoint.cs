using System.Security.Cryptography;
using System.Text.Json;
using DlsganOod.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DlsganOod.Core.Model;

/// <summary>A checkpoint that cannot be used; the message says which file and why.</summary>
public sealed class CheckpointException : Exception
{
    public CheckpointException(string message) : base(message) { }
    public CheckpointException(string message, Exception inner) : base(message, inner) { }
    public CheckpointException() : base("invalid checkpoint") { }
}

public sealed record TrainingRecord
{
    public string DataFingerprint { get; init; } = "";
    public int DataCount { get; init; }
    public string DataSource { get; init; } = "";
    public long Steps { get; init; }
    public int Epochs { get; init; }
    public int Seed { get; init; }
    public double Seconds { get; init; }
    public Dictionary<string, double> FinalLosses { get; init; } = new();
    public Dictionary<string, string> Options { get; init; } = new();
}

public sealed record CalibrationRecord
{
    public string Score { get; init; } = "log_likelihood";
    public double TargetFpr { get; init; }
    /// <summary>For log_likelihood: OOD iff log-likelihood &lt; threshold. For other scores: OOD iff score &gt; threshold.</summary>
    public double Threshold { get; init; }
    public double AchievedFpr { get; init; }
    public int Count { get; init; }
    public string DataFingerprint { get; init; } = "";
    public string DataSource { get; init; } = "";
    public DateTimeOffset CalibratedAt { get; init; }
}

public sealed record LatentStatistics
{
    public float[] Mean { get; init; } = [];
    public float[] Variance { get; init; } = [];
}

/// <summary>Contents of model.json.</summary>
public sealed record CheckpointMetadata
{
    public const string CurrentFormat = "dlsgan-ood-checkpoint/1";
    public string Format { get; init; } = CurrentFormat;
    public string Name { get; init; } = "model";
    public DateTimeOffset CreatedAt { get; init; } = DateTimeOffset.UtcNow;
    public ModelConfig Config { get; init; } = new();
    public Preprocessing Preprocessing { get; init; } = new();
    public LatentStatistics Latent { get; init; } = new();
    public TrainingRecord? Training { get; init; }
    public CalibrationRecord? Calibration { get; init; }
    /// <summary>Further calibrated scores (issue: other scores); keyed by score name.</summary>
    public Dictionary<string, CalibrationRecord>? ScoreCalibrations { get; init; }
}

public sealed record Manifest
{
    public string Algorithm { get; init; } = "sha256";
    public SortedDictionary<string, string> Files { get; init; } = new(StringComparer.Ordinal);
}

/// <summary>A loaded, verified checkpoint.</summary>
public sealed class LoadedCheckpoint : IDisposable
{
    internal LoadedCheckpoint(string directory, CheckpointMetadata metadata, DlsganModel model, string sha256)
    {
        Directory = directory;
        Metadata = metadata;
        Model = model;
        Sha256 = sha256;
    }

    public string Directory { get; }
    public CheckpointMetadata Metadata { get; }
    public DlsganModel Model { get; }
    /// <summary>SHA-256 of manifest.json: one identifier for every byte of the checkpoint.</summary>
    public string Sha256 { get; }
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Folder layout: model.json (config, preprocessing, v and μ, training and calibration records),
/// encoder.bin and generator.bin (TorchSharp state dicts), optional trainer state (optimizers, step)
/// for resuming, and manifest.json with the SHA-256 of each of them. Loading verifies everything.
/// </summary>
public static class Checkpoint
{
    public const string MetadataFile = "model.json";
    public const string EncoderFile = "encoder.bin";
    public const string GeneratorFile = "generator.bin";
    public const string ManifestFile = "manifest.json";
    public static readonly string[] RequiredFiles = [MetadataFile, EncoderFile, GeneratorFile];
    /// <summary>Fitted statistics of the scores beyond the paper (written by calibrate --score).</summary>
    public static readonly string[] OptionalModelFiles = ["scores.json", "scores-gaussian.bin"];

    /// <summary>A checkpoint folder itself, or the checkpoint/ folder inside a training run folder.</summary>
    public static string Resolve(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return File.Exists(Path.Combine(path, ManifestFile)) || !System.IO.Directory.Exists(Path.Combine(path, "checkpoint"))
            ? path
            : Path.Combine(path, "checkpoint");
    }

    /// <summary>
    /// The model to use when none is named: $DLSGANOOD_MODEL, else models/default beside the program, else
    /// models/default in the working directory or a folder above it (a clone of the repository).
    /// </summary>
    public static string FindDefault()
    {
        const string relative = "models/default";
        var fromEnv = Environment.GetEnvironmentVariable("DLSGANOOD_MODEL");
        if (!string.IsNullOrWhiteSpace(fromEnv)) return Resolve(fromEnv);
        var beside = Path.Combine(AppContext.BaseDirectory, relative);
        if (File.Exists(Path.Combine(beside, ManifestFile))) return beside;
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(Path.Combine(candidate, ManifestFile))) return candidate;
        }
        throw new FileNotFoundException($"No model given and no default model found ({relative} beside the program or above {Environment.CurrentDirectory}); pass --model or set DLSGANOOD_MODEL.");
    }

    public static void Save(DlsganModel model, string directory, CheckpointMetadata metadata, IReadOnlyDictionary<string, Action<string>>? extraFiles = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(metadata);
        // Written to a sibling folder and swapped in, so a crash mid-save never leaves a half checkpoint.
        var full = Path.GetFullPath(directory);
        var staging = full + ".saving";
        if (System.IO.Directory.Exists(staging)) System.IO.Directory.Delete(staging, recursive: true);
        System.IO.Directory.CreateDirectory(staging);
        var withLatent = metadata with
        {
            Config = model.Config,
            Preprocessing = model.Preprocessing,
            Latent = new LatentStatistics { Mean = model.MeanArray(), Variance = model.VarianceArray() },
        };
        File.WriteAllText(Path.Combine(staging, MetadataFile), Json.Serialize(withLatent));
        model.Encoder.save(Path.Combine(staging, EncoderFile));
        model.Generator.save(Path.Combine(staging, GeneratorFile));
        if (extraFiles is not null)
            foreach (var (name, write) in extraFiles)
                write(Path.Combine(staging, name));
        WriteManifest(staging);
        var old = full + ".old";
        if (System.IO.Directory.Exists(old)) System.IO.Directory.Delete(old, recursive: true);
        if (System.IO.Directory.Exists(full)) System.IO.Directory.Move(full, old);
        System.IO.Directory.Move(staging, full);
        if (System.IO.Directory.Exists(old)) System.IO.Directory.Delete(old, recursive: true);
    }

    /// <summary>
    /// Copies the model files of a verified checkpoint (not the trainer state) to a new folder with a fresh
    /// manifest: what is served and committed, without the optimizer state only training needs.
    /// </summary>
    public static void Export(string source, string destination)
    {
        VerifyManifest(source);
        if (System.IO.Directory.Exists(destination)) System.IO.Directory.Delete(destination, recursive: true);
        System.IO.Directory.CreateDirectory(destination);
        foreach (var file in RequiredFiles.Concat(OptionalModelFiles).Where(f => File.Exists(Path.Combine(source, f))))
            File.Copy(Path.Combine(source, file), Path.Combine(destination, file));
        WriteManifest(destination);
    }

    /// <summary>Rewrites model.json (e.g. after calibration) and the manifest, after verifying the rest.</summary>
    /// <param name="writeFiles">Writes further files into the folder (e.g. score statistics) after verification.</param>
    public static void UpdateMetadata(string directory, Func<CheckpointMetadata, CheckpointMetadata> update, Action<string>? writeFiles = null)
    {
        ArgumentNullException.ThrowIfNull(update);
        VerifyManifest(directory);
        writeFiles?.Invoke(directory);
        var metadata = ReadMetadata(directory);
        var path = Path.Combine(directory, MetadataFile);
        File.WriteAllText(path + ".tmp", Json.Serialize(update(metadata)));
        File.Move(path + ".tmp", path, overwrite: true);
        WriteManifest(directory);
    }

    public static void WriteManifest(string directory)
    {
        var manifest = new Manifest();
        foreach (var file in System.IO.Directory.EnumerateFiles(directory).Select(Path.GetFileName).OfType<string>()
                     .Where(f => f != ManifestFile && !f.EndsWith(".tmp", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            manifest.Files[file] = Sha256File(Path.Combine(directory, file));
        var path = Path.Combine(directory, ManifestFile);
        File.WriteAllText(path + ".tmp", Json.Serialize(manifest));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>Checks every file the manifest names; returns the manifest's own SHA-256.</summary>
    public static string VerifyManifest(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) throw new CheckpointException($"{directory}: checkpoint folder not found");
        var manifestPath = Path.Combine(directory, ManifestFile);
        if (!File.Exists(manifestPath)) throw new CheckpointException($"{manifestPath}: missing manifest; not a checkpoint");
        Manifest manifest;
        try
        {
            manifest = Json.Deserialize<Manifest>(File.ReadAllText(manifestPath));
        }
        catch (JsonException ex)
        {
            throw new CheckpointException($"{manifestPath}: unreadable manifest ({ex.Message})", ex);
        }
        if (manifest.Algorithm != "sha256") throw new CheckpointException($"{manifestPath}: unsupported hash algorithm '{manifest.Algorithm}'");
        foreach (var required in RequiredFiles)
            if (!manifest.Files.ContainsKey(required)) throw new CheckpointException($"{manifestPath}: does not list required file {required}");
        foreach (var (file, expected) in manifest.Files)
        {
            var path = Path.Combine(directory, file);
            if (!File.Exists(path)) throw new CheckpointException($"{path}: listed in the manifest but missing");
            var actual = Sha256File(path);
            if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
                throw new CheckpointException($"{path}: sha256 {actual} does not match the manifest ({expected}); the file is corrupt or was modified");
        }
        return Sha256File(manifestPath);
    }

    public static CheckpointMetadata ReadMetadata(string directory)
    {
        var path = Path.Combine(directory, MetadataFile);
        CheckpointMetadata metadata;
        try
        {
            metadata = Json.Deserialize<CheckpointMetadata>(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is JsonException or IOException)
        {
            throw new CheckpointException($"{path}: unreadable model metadata ({ex.Message})", ex);
        }
        if (metadata.Format != CheckpointMetadata.CurrentFormat)
            throw new CheckpointException($"{path}: format '{metadata.Format}' is not '{CheckpointMetadata.CurrentFormat}'");
        try
        {
            metadata.Config.Validate();
            metadata.Preprocessing.Validate();
        }
        catch (InvalidDataException ex)
        {
            throw new CheckpointException($"{path}: {ex.Message}", ex);
        }
        return metadata;
    }

    public static LoadedCheckpoint Load(string directory, Device? device = null)
    {
        var sha = VerifyManifest(directory);
        var metadata = ReadMetadata(directory);
        DlsganModel? model = null;
        try
        {
            model = new DlsganModel(metadata.Config, metadata.Preprocessing, device);
            LoadWeights(model.Encoder, Path.Combine(directory, EncoderFile));
            LoadWeights(model.Generator, Path.Combine(directory, GeneratorFile));
            try
            {
                model.SetLatentStatistics(metadata.Latent.Mean, metadata.Latent.Variance);
            }
            catch (InvalidDataException ex)
            {
                throw new CheckpointException($"{Path.Combine(directory, MetadataFile)}: {ex.Message}", ex);
            }
            if (metadata.Calibration is { } c && !double.IsFinite(c.Threshold))
                throw new CheckpointException($"{Path.Combine(directory, MetadataFile)}: calibration threshold is not finite");
            model.Train(false);
            return new LoadedCheckpoint(Path.GetFullPath(directory), metadata, model, sha);
        }
        catch (Exception ex) when (ex is InvalidDataException)
        {
            model?.Dispose();
            throw new CheckpointException($"{Path.Combine(directory, MetadataFile)}: {ex.Message}", ex);
        }
        catch
        {
            model?.Dispose();
            throw;
        }
    }

    private static void LoadWeights(nn.Module module, string path)
    {
        try
        {
            module.load(path, strict: true);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new CheckpointException($"{path}: weights do not match the architecture in {MetadataFile} or the file is damaged ({ex.Message})", ex);
        }
        foreach (var (name, parameter) in module.named_parameters())
        {
            using var finite = parameter.isfinite().all();
            if (!finite.item<bool>())
                throw new CheckpointException($"{path}: parameter {name} contains NaN or infinite values");
        }
    }

    public static string Sha256File(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
