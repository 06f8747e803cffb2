using System.Globalization;
using DlsganOod.Core.Data;
using DlsganOod.Core.Model;

namespace DlsganOod.Core.Registry;

/// <summary>What a published version says about itself (version.json, covered by the manifest).</summary>
public sealed record VersionRecord
{
    public string Name { get; init; } = "";
    public string Version { get; init; } = "";
    public DateTimeOffset CreatedAt { get; init; }
    public string TrainingDataFingerprint { get; init; } = "";
    public Preprocessing Preprocessing { get; init; } = new();
    public CalibrationRecord? Calibration { get; init; }
    public Dictionary<string, CalibrationRecord>? ScoreCalibrations { get; init; }
    /// <summary>Evaluation summary: score → OOD set → AUROC.</summary>
    public Dictionary<string, Dictionary<string, double>> Evaluation { get; init; } = new();
    public string Source { get; init; } = "";
}

public sealed record PublishedVersion(string Name, string Version, string Path, string Sha256, VersionRecord Record);

/// <summary>
/// A folder of immutable model versions: &lt;root&gt;/&lt;name&gt;/&lt;version&gt;/ with the checkpoint files, version.json
/// and manifest.json (SHA-256 of every file). The threshold is part of the version; nothing is rewritten.
/// </summary>
public sealed class ModelRegistry
{
    public const string VersionFile = "version.json";

    public ModelRegistry(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = System.IO.Path.GetFullPath(root);
    }

    public string Root { get; }

    public static string DefaultRoot() =>
        Environment.GetEnvironmentVariable("DLSGANOOD_REGISTRY") is { Length: > 0 } r ? r : System.IO.Path.Combine("registry");

    public IReadOnlyList<string> Versions(string name)
    {
        var dir = System.IO.Path.Combine(Root, name);
        if (!Directory.Exists(dir)) return [];
        return Directory.EnumerateDirectories(dir).Select(System.IO.Path.GetFileName).OfType<string>()
            .Where(v => v.StartsWith('v') && int.TryParse(v.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            .OrderBy(v => int.Parse(v.AsSpan(1), CultureInfo.InvariantCulture)).ToArray();
    }

    public string PathOf(string name, string version) => System.IO.Path.Combine(Root, name, version);

    /// <summary>Copies a calibrated checkpoint in as the next version (v1, v2, …) and makes its files read-only.</summary>
    public PublishedVersion Publish(string checkpointDirectory, string name, Dictionary<string, Dictionary<string, double>> evaluation, string source)
    {
        ArgumentNullException.ThrowIfNull(evaluation);
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny(['/', '\\', '.']) >= 0) throw new ArgumentException($"--name: '{name}' is not a valid model name");
        Checkpoint.VerifyManifest(checkpointDirectory);
        var metadata = Checkpoint.ReadMetadata(checkpointDirectory);
        if (metadata.Calibration is null) throw new ArgumentException($"{checkpointDirectory}: not calibrated; a version is never published without its threshold");
        var existing = Versions(name);
        var version = "v" + (existing.Count == 0 ? 1 : int.Parse(existing[^1].AsSpan(1), CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture);
        var target = PathOf(name, version);
        if (Directory.Exists(target)) throw new InvalidOperationException($"{target} exists; versions are immutable");
        var staging = target + ".publishing";
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        Checkpoint.Export(checkpointDirectory, staging);
        Checkpoint.UpdateMetadata(staging, m => m with { Name = name });
        var record = new VersionRecord
        {
            Name = name,
            Version = version,
            CreatedAt = DateTimeOffset.UtcNow,
            TrainingDataFingerprint = metadata.Training?.DataFingerprint ?? "",
            Preprocessing = metadata.Preprocessing,
            Calibration = metadata.Calibration,
            ScoreCalibrations = metadata.ScoreCalibrations,
            Evaluation = evaluation,
            Source = source,
        };
        File.WriteAllText(System.IO.Path.Combine(staging, VersionFile), Json.Serialize(record));
        Checkpoint.WriteManifest(staging);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
        Directory.Move(staging, target);
        foreach (var file in Directory.EnumerateFiles(target))
        {
            if (OperatingSystem.IsWindows()) File.SetAttributes(file, FileAttributes.ReadOnly);
            else File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        return Open(name, version);
    }

    /// <summary>A version's record and manifest hash, after checking every file against the manifest.</summary>
    public PublishedVersion Open(string name, string version)
    {
        var path = PathOf(name, version);
        if (!Directory.Exists(path)) throw new ArgumentException($"unknown version {name}/{version} (registry {Root})");
        var sha = Checkpoint.VerifyManifest(path);
        var record = Json.Deserialize<VersionRecord>(File.ReadAllText(System.IO.Path.Combine(path, VersionFile)));
        return new PublishedVersion(name, version, path, sha, record);
    }
}
