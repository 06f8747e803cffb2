using DlsganOod.Core.Model;
using DlsganOod.Training;

namespace DlsganOod.Cli;

/// <summary>Finds the model to use: the one named, else $DLSGANOOD_MODEL, else the committed default model.</summary>
internal static class ModelLocator
{
    public const string DefaultRelative = "models/default";

    public static string Resolve(string? given)
    {
        if (!string.IsNullOrWhiteSpace(given)) return DlsganTrainer.CheckpointIn(given);
        var fromEnv = Environment.GetEnvironmentVariable("DLSGANOOD_MODEL");
        if (!string.IsNullOrWhiteSpace(fromEnv)) return DlsganTrainer.CheckpointIn(fromEnv);
        // Shipped beside the binary (copied at build), else found from the working directory upwards (a clone).
        var beside = Path.Combine(AppContext.BaseDirectory, DefaultRelative);
        if (File.Exists(Path.Combine(beside, Checkpoint.ManifestFile))) return beside;
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, DefaultRelative);
            if (File.Exists(Path.Combine(candidate, Checkpoint.ManifestFile))) return candidate;
        }
        throw new FileNotFoundException($"No model given and no default model found ({DefaultRelative} beside the binary or above {Environment.CurrentDirectory}); pass --model.");
    }
}
