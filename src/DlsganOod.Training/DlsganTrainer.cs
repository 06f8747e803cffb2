using System.Diagnostics;
using System.Globalization;
using DlsganOod.Core;
using DlsganOod.Core.Data;
using DlsganOod.Core.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DlsganOod.Training;

/// <summary>State needed to continue a run: written beside the weights as trainer.json.</summary>
public sealed record TrainerState
{
    public long Step { get; init; }
    public int CompletedEpochs { get; init; }
    public double Seconds { get; init; }
    public int Seed { get; init; }
}

public sealed record TrainingResult(string CheckpointDirectory, long Steps, int CompletedEpochs, double Seconds, bool Cancelled, IReadOnlyDictionary<string, double> FinalLosses);

/// <summary>
/// DLSGAN training (non-saturating GAN loss, R1 on reals, encoder loss scaled by the dynamic latent scale):
///   s = sqrt(d·v/Σv); fake = G(z⊙s); (a_f, ẑ) = E(fake); (a_r, ·) = E(real)
///   L_enc = mean_i((ẑ_i − z_i)·s_i)²
///   L_D = softplus(−a_r) + softplus(a_f) + λ_enc·L_enc + λ_r1·‖∇_real a_r‖²
///   L_G = softplus(−a_f) + λ_enc·L_enc
///   v ← decay·v + (1 − decay)·mean_batch(ẑ²)
/// One forward pass serves both losses (as in the reference implementation): G's gradients come from L_G,
/// E's from L_D.
/// </summary>
public sealed class DlsganTrainer
{
    public const string TrainerStateFile = "trainer.json";
    public const string EncoderOptimizerFile = "optimizer-encoder.bin";
    public const string GeneratorOptimizerFile = "optimizer-generator.bin";
    public const string LogFile = "training-log.csv";
    public const string LossPlotFile = "loss-curve.png";
    public const string CheckpointFolder = "checkpoint";

    /// <summary>A run folder holds the log, the loss curve and checkpoint/; either may be named to resume.</summary>
    public static string CheckpointIn(string path) => Checkpoint.Resolve(path);

    private readonly TrainerOptions options;
    private readonly Action<string> log;
    // Scalars live in fields: an inline temporary can be finalized while libtorch still reads it.
    private readonly Scalar encoderWeight;
    private readonly Scalar r1Weight;
    private readonly Scalar decay;
    private readonly Scalar oneMinusDecay;

    public DlsganTrainer(TrainerOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        this.log = log ?? (_ => { });
        encoderWeight = options.EncoderWeight.ToScalar();
        r1Weight = (options.R1Weight * options.R1Interval).ToScalar();
        decay = options.VarianceDecay.ToScalar();
        oneMinusDecay = (1 - options.VarianceDecay).ToScalar();
    }

    public static Device ResolveDevice(string name)
    {
        if (name.StartsWith("cuda", StringComparison.Ordinal) && !cuda.is_available())
            throw new ArgumentException($"device: '{name}' was requested but CUDA is not available (this build references TorchSharp-cpu; reference a CUDA build of TorchSharp to train on a GPU)");
        return torch.device(name);
    }

    /// <summary>
    /// Trains a new model (or continues <paramref name="resumeFrom"/>) on <paramref name="data"/> and writes
    /// checkpoints to <paramref name="outputDirectory"/>. Cancellation stops after the current step and saves.
    /// </summary>
    public TrainingResult Train(
        ImageSet data, string dataSource, ModelConfig config, string outputDirectory, string name,
        string? resumeFrom = null, IProgress<TrainingProgress>? progress = null,
        Action<int, DlsganModel>? onEpochEnd = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(config);
        if (options.Threads > 0) set_num_threads(options.Threads);
        var device = ResolveDevice(options.Device);
        var preprocessing = new Preprocessing
        {
            InputHeight = data.Height, InputWidth = data.Width, Channels = data.Channels,
            Pad = (config.Resolution - Math.Max(data.Height, data.Width)) / 2,
        };
        if (preprocessing.Height != config.Resolution || preprocessing.Width != config.Resolution)
            throw new ArgumentException($"Images of {data.Height}x{data.Width} cannot be padded to the model's {config.Resolution}x{config.Resolution}; use square images no larger than the model.");
        if (data.Count < options.BatchSize)
            throw new ArgumentException($"{data.Count} training images is fewer than one batch of {options.BatchSize}.");

        var state = new TrainerState { Seed = options.Seed };
        DlsganModel model;
        manual_seed(options.Seed);
        if (resumeFrom is not null)
        {
            resumeFrom = CheckpointIn(resumeFrom);
            var loaded = Checkpoint.Load(resumeFrom, device);
            model = loaded.Model;
            if (model.Config != config with { Preset = model.Config.Preset })
                log($"Resuming with the checkpoint's architecture ({model.Config}); the preset options given are ignored.");
            var statePath = Path.Combine(resumeFrom, TrainerStateFile);
            if (!File.Exists(statePath)) throw new CheckpointException($"{statePath}: missing; this checkpoint cannot be resumed");
            state = Json.Deserialize<TrainerState>(File.ReadAllText(statePath));
            var fingerprint = loaded.Metadata.Training?.DataFingerprint;
            if (fingerprint is not null && fingerprint != data.Fingerprint())
                throw new ArgumentException($"The training data differs from the data {resumeFrom} was trained on (fingerprint {fingerprint}).");
            manual_seed(options.Seed + state.Step);
        }
        else
        {
            model = new DlsganModel(config, preprocessing, device);
        }

        using var _model = model;
        using var realData = ToTensor(data, model.Preprocessing, device);
        var gParams = model.Generator.parameters().ToArray();
        var eParams = model.Encoder.parameters().ToArray();
        using var optG = optim.Adam(gParams, options.LearningRate, options.Beta1, options.Beta2);
        using var optE = optim.Adam(eParams, options.LearningRate, options.Beta1, options.Beta2);
        if (resumeFrom is not null)
        {
            optG.load_state_dict(Path.Combine(resumeFrom, GeneratorOptimizerFile));
            optE.load_state_dict(Path.Combine(resumeFrom, EncoderOptimizerFile));
        }

        Directory.CreateDirectory(outputDirectory);
        var logPath = Path.Combine(outputDirectory, LogFile);
        var previousLog = resumeFrom is null ? null : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(resumeFrom))!, LogFile);
        if (previousLog is not null && File.Exists(previousLog) && Path.GetFullPath(previousLog) != Path.GetFullPath(logPath))
            File.Copy(previousLog, logPath, overwrite: true);
        if (resumeFrom is null || !File.Exists(logPath))
            File.WriteAllText(logPath, TrainingLogRow.Header + "\n");

        var stepsPerEpoch = data.Count / options.BatchSize;
        var totalSteps = (long)stepsPerEpoch * options.Epochs;
        var step = state.Step;
        var epoch = state.CompletedEpochs;
        var shuffle = new Random(options.Seed * 7919 + epoch);
        var clock = Stopwatch.StartNew();
        var secondsBefore = state.Seconds;
        var window = new TrainingLogRow.Accumulator();
        var rateClock = Stopwatch.StartNew();
        var rateSteps = 0L;
        double stepsPerSecond = 0;
        var cancelled = false;
        var startStepInEpoch = (int)(step - (long)epoch * stepsPerEpoch);
        model.Train(true);

        log($"Training {model.ParameterCount():N0} parameters on {data.Count} images ({stepsPerEpoch} steps/epoch) on {device}, epochs {epoch}→{options.Epochs}.");
        while (epoch < options.Epochs && !cancelled)
        {
            var lr = epoch < options.HighEpochs ? options.LearningRate : options.LowLearningRate;
            foreach (var group in optG.ParamGroups.Concat(optE.ParamGroups)) group.LearningRate = lr;
            var order = Enumerable.Range(0, data.Count).ToArray();
            shuffle.Shuffle(order);
            for (var b = Math.Max(startStepInEpoch, 0); b < stepsPerEpoch; b++)
            {
                if (cancellationToken.IsCancellationRequested) { cancelled = true; break; }
                var stats = Step(model, realData, order.AsSpan(b * options.BatchSize, options.BatchSize), step, gParams, eParams, optG, optE);
                step++;
                rateSteps++;
                window.Add(stats);
                if (step % options.LogEverySteps == 0 || b == stepsPerEpoch - 1)
                {
                    var seconds = secondsBefore + clock.Elapsed.TotalSeconds;
                    if (rateClock.Elapsed.TotalSeconds > 0) stepsPerSecond = rateSteps / rateClock.Elapsed.TotalSeconds;
                    var row = window.Flush(step, epoch + (double)(b + 1) / stepsPerEpoch, lr, seconds, model);
                    File.AppendAllText(logPath, row.ToCsv() + "\n");
                    if (!row.IsFinite)
                        throw new InvalidOperationException($"Training diverged at step {step}: a loss is NaN or infinite ({row.ToCsv()}).");
                    progress?.Report(new TrainingProgress(step, totalSteps, epoch, options.Epochs, stepsPerSecond,
                        stepsPerSecond > 0 ? TimeSpan.FromSeconds((totalSteps - step) / stepsPerSecond) : TimeSpan.Zero,
                        row.LossD, row.LossG, row.LossEnc, row.R1, lr, row.VarianceMean));
                }
            }
            startStepInEpoch = 0;
            if (!cancelled)
            {
                epoch++;
                onEpochEnd?.Invoke(epoch, model);
                model.Train(true);
            }
            var last = epoch >= options.Epochs || cancelled;
            if (last || epoch % options.CheckpointEveryEpochs == 0)
            {
                state = new TrainerState { Step = step, CompletedEpochs = epoch, Seconds = secondsBefore + clock.Elapsed.TotalSeconds, Seed = options.Seed };
                Save(model, outputDirectory, name, data, dataSource, state, window.LastLosses, optG, optE, logPath);
            }
        }
        var total = secondsBefore + clock.Elapsed.TotalSeconds;
        return new TrainingResult(Path.Combine(outputDirectory, CheckpointFolder), step, epoch, total, cancelled, window.LastLosses);
    }

    private TrainingLogRow.StepStats Step(DlsganModel model, Tensor realData, ReadOnlySpan<int> batchIndices, long step,
        Parameter[] gParams, Parameter[] eParams, optim.Optimizer optG, optim.Optimizer optE)
    {
        using var scope = NewDisposeScope();
        var device = model.Device;
        using var index = tensor(batchIndices.ToArray().Select(i => (long)i).ToArray(), device: device);
        var real = realData.index_select(0, index);
        var batch = real.shape[0];
        var d = model.Config.LatentDim;
        var z = randn(batch, d, device: device);
        Tensor s;
        using (no_grad()) s = model.LatentScale();

        var doR1 = options.R1Weight > 0 && step % options.R1Interval == 0;
        if (doR1) real.requires_grad_(true);
        var (adversarialReal, _) = model.Encoder.forward(real);
        var fake = model.Generator.forward(z * s);
        var (adversarialFake, predicted) = model.Encoder.forward(fake);

        var encoderLoss = ((predicted - z) * s).square().mean([1]);
        var lossD = (SafeOps.Softplus(-adversarialReal) + SafeOps.Softplus(adversarialFake) + encoderLoss * encoderWeight).mean();
        var r1Value = 0.0;
        if (doR1)
        {
            var gradient = autograd.grad([adversarialReal.sum()], [real], retain_graph: true, create_graph: true)[0];
            var penalty = gradient.square().sum([1, 2, 3]).mean();
            r1Value = penalty.item<float>();
            lossD = lossD + penalty * r1Weight;
        }
        var lossG = (SafeOps.Softplus(-adversarialFake) + encoderLoss * encoderWeight).mean();

        var gGrads = autograd.grad([lossG], gParams, retain_graph: true);
        var eGrads = autograd.grad([lossD], eParams);
        for (var i = 0; i < gParams.Length; i++) gParams[i].grad = gGrads[i];
        for (var i = 0; i < eParams.Length; i++) eParams[i].grad = eGrads[i];
        optG.step();
        optE.step();

        using (no_grad())
        {
            var batchVariance = predicted.detach().square().mean([0]);
            model.LatentVariance.mul_(decay).add_(batchVariance, alpha: oneMinusDecay);
        }

        return new TrainingLogRow.StepStats(
            lossD.item<float>(), lossG.item<float>(), encoderLoss.mean().item<float>(), doR1 ? r1Value : double.NaN,
            adversarialReal.mean().item<float>(), adversarialFake.mean().item<float>());
    }

    private void Save(DlsganModel model, string directory, string name, ImageSet data, string dataSource, TrainerState state,
        IReadOnlyDictionary<string, double> losses, OptimizerHelper optG, OptimizerHelper optE, string logPath)
    {
        var metadata = new CheckpointMetadata
        {
            Name = name,
            Training = new TrainingRecord
            {
                DataFingerprint = data.Fingerprint(),
                DataCount = data.Count,
                DataSource = dataSource,
                Steps = state.Step,
                Epochs = state.CompletedEpochs,
                Seed = options.Seed,
                Seconds = Math.Round(state.Seconds, 1),
                FinalLosses = new Dictionary<string, double>(losses),
                Options = options.ToRecord(),
            },
        };
        var extra = new Dictionary<string, Action<string>>
        {
            [TrainerStateFile] = p => File.WriteAllText(p, Json.Serialize(state)),
            [EncoderOptimizerFile] = p => optE.save_state_dict(p),
            [GeneratorOptimizerFile] = p => optG.save_state_dict(p),
        };
        // The log and the plot stay in the run folder, outside the checkpoint's manifest: they grow while training.
        Checkpoint.Save(model, Path.Combine(directory, CheckpointFolder), metadata, extra);
        try
        {
            LossPlot.Write(logPath, Path.Combine(directory, LossPlotFile));
        }
        catch (Exception ex) when (ex is IOException or FormatException or InvalidOperationException)
        {
            log($"Could not draw the loss curve: {ex.Message}");
        }
        log(string.Create(CultureInfo.InvariantCulture, $"Saved {directory} at step {state.Step} (epoch {state.CompletedEpochs})."));
    }

    internal static Tensor ToTensor(ImageSet data, Preprocessing preprocessing, Device device)
    {
        var floats = preprocessing.ToModelInput(preprocessing.Conform(data), 0, data.Count);
        return tensor(floats, [data.Count, preprocessing.Channels, preprocessing.Height, preprocessing.Width], device: device);
    }
}
