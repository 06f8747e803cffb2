using DlsganOod.Core.Model;

namespace DlsganOod.Cli;

/// <summary>Finds the model to use: the one named, else the default (see <see cref="Checkpoint.FindDefault"/>).</summary>
internal static class ModelLocator
{
    public static string Resolve(string? given) =>
        string.IsNullOrWhiteSpace(given) ? Checkpoint.FindDefault() : Checkpoint.Resolve(given);
}
