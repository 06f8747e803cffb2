using System.Globalization;

namespace DlsganOod.Training;

/// <summary>
/// DLSGAN training settings. Defaults follow the paper (λ_enc = 1, λ_r1 = 10, batch 32, Adam β = (0, 0.99),
/// 1e-3 then 1e-5) except where measured CPU runs showed otherwise; each departure is named here.
/// </summary>
public sealed record TrainerOptions
{
    public int Epochs { get; init; } = 60;
    /// <summary>Epochs at the high learning rate before switching to the low one; default half of <see cref="Epochs"/>.</summary>
    public int? HighLearningRateEpochs { get; init; }
    public double LearningRate { get; init; } = 1e-3;
    public double LowLearningRate { get; init; } = 1e-5;
    public int BatchSize { get; init; } = 32;
    public double EncoderWeight { get; init; } = 1.0;
    public double R1Weight { get; init; } = 10.0;
    /// <summary>
    /// Lazy R1: the penalty is computed every k-th step with weight × k (StyleGAN2). k = 1 is the paper;
    /// k = 4 saves ~30% of a CPU step.
    /// </summary>
    public int R1Interval { get; init; } = 1;
    /// <summary>
    /// EMA decay of the latent variance trace v. The paper uses 0.999; on 2 CPU cores and 8k digits the
    /// encoder loss stayed at 1.0 (no dynamic scale) for 12 epochs with it, while 0.99 let it act by epoch 4.
    /// </summary>
    public double VarianceDecay { get; init; } = 0.999;
    public double Beta1 { get; init; }
    public double Beta2 { get; init; } = 0.99;
    public int Seed { get; init; } = 1;
    public string Device { get; init; } = "cpu";
    /// <summary>Intra-op threads for libtorch on the CPU; 0 keeps libtorch's default.</summary>
    public int Threads { get; init; }
    public int LogEverySteps { get; init; } = 50;
    /// <summary>Save a resumable checkpoint every this many epochs (and always at the end or on cancellation).</summary>
    public int CheckpointEveryEpochs { get; init; } = 1;

    public int HighEpochs => HighLearningRateEpochs ?? (Epochs + 1) / 2;

    public void Validate()
    {
        static void Require(bool ok, string setting, string message)
        {
            if (!ok) throw new ArgumentException($"{setting}: {message}");
        }
        Require(Epochs >= 1, "epochs", $"must be at least 1, not {Epochs}");
        Require(HighEpochs >= 0 && HighEpochs <= Epochs, "lr-high-epochs", $"must lie in [0, epochs], not {HighEpochs}");
        Require(LearningRate > 0 && LowLearningRate > 0, "lr", "learning rates must be positive");
        Require(BatchSize >= 2, "batch-size", $"must be at least 2, not {BatchSize}");
        Require(EncoderWeight >= 0, "lambda-enc", "must not be negative");
        Require(R1Weight >= 0, "lambda-r1", "must not be negative");
        Require(R1Interval >= 1, "r1-interval", $"must be at least 1, not {R1Interval}");
        Require(VarianceDecay is > 0 and < 1, "variance-decay", $"must lie in (0, 1), not {VarianceDecay}");
        Require(Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1, "adam betas", "must lie in [0, 1)");
        Require(Device is "cpu" or "cuda" || Device.StartsWith("cuda:", StringComparison.Ordinal), "device", $"must be cpu, cuda or cuda:N, not '{Device}'");
    }

    public Dictionary<string, string> ToRecord() => new()
    {
        ["epochs"] = Epochs.ToString(CultureInfo.InvariantCulture),
        ["lr_high_epochs"] = HighEpochs.ToString(CultureInfo.InvariantCulture),
        ["lr"] = LearningRate.ToString("R", CultureInfo.InvariantCulture),
        ["lr_low"] = LowLearningRate.ToString("R", CultureInfo.InvariantCulture),
        ["batch_size"] = BatchSize.ToString(CultureInfo.InvariantCulture),
        ["lambda_enc"] = EncoderWeight.ToString("R", CultureInfo.InvariantCulture),
        ["lambda_r1"] = R1Weight.ToString("R", CultureInfo.InvariantCulture),
        ["r1_interval"] = R1Interval.ToString(CultureInfo.InvariantCulture),
        ["variance_decay"] = VarianceDecay.ToString("R", CultureInfo.InvariantCulture),
        ["adam_betas"] = FormattableString.Invariant($"{Beta1},{Beta2}"),
        ["seed"] = Seed.ToString(CultureInfo.InvariantCulture),
        ["device"] = Device,
    };
}

public sealed record TrainingProgress(
    long Step, long TotalSteps, int Epoch, int Epochs, double StepsPerSecond, TimeSpan Eta,
    double LossD, double LossG, double LossEnc, double R1, double LearningRate, double VarianceMean);
