using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;
using DlsganOod.Core.Tests;
using DlsganOod.Training;

namespace DlsganOod.Training.Tests;

public class TrainerTests
{
    private static readonly ModelConfig Tiny = new() { Preset = "test", BaseWidth = 2, LatentDim = 8 };
    private static readonly TrainerOptions Quick = new() { Epochs = 2, BatchSize = 16, LogEverySteps = 2, R1Interval = 2, VarianceDecay = 0.9, Seed = 3 };

    [Fact]
    public void A_short_run_has_finite_losses_moves_v_and_saves_a_loadable_checkpoint()
    {
        using var dir = new TempDir();
        var data = Synthetic.Rings(64);
        double[]? inMemory = null;
        var result = new DlsganTrainer(Quick).Train(data, "rings", Tiny, dir.Path, "tiny",
            onEpochEnd: (epoch, model) => { if (epoch == 2) inMemory = Inference.Encode(model, data).LogLikelihood; });
        Assert.False(result.Cancelled);
        Assert.Equal(8, result.Steps);
        Assert.All(result.FinalLosses.Values, v => Assert.True(double.IsFinite(v)));

        using var loaded = Checkpoint.Load(result.CheckpointDirectory);
        Assert.Contains(loaded.Model.VarianceArray(), v => Math.Abs(v - 1) > 1e-3);
        Assert.Equal(inMemory, Inference.Encode(loaded.Model, data).LogLikelihood);
        Assert.Equal(data.Fingerprint(), loaded.Metadata.Training!.DataFingerprint);
        Assert.Equal("0.9", loaded.Metadata.Training.Options["variance_decay"]);

        var log = File.ReadAllLines(Path.Combine(dir.Path, DlsganTrainer.LogFile));
        Assert.Equal(TrainingLogRow.Header, log[0]);
        Assert.Equal(5, log.Length); // header + a row every 2 steps
        Assert.All(log.Skip(1).Select(TrainingLogRow.Parse), r => Assert.True(r.IsFinite));
        Assert.True(File.Exists(Path.Combine(dir.Path, DlsganTrainer.LossPlotFile)));
    }

    [Fact]
    public void Resume_continues_the_step_count_and_log()
    {
        using var dir = new TempDir();
        var data = Synthetic.Rings(32);
        var first = new DlsganTrainer(Quick with { Epochs = 1 }).Train(data, "rings", Tiny, dir.Path, "tiny");
        Assert.Equal(2, first.Steps);
        var second = new DlsganTrainer(Quick with { Epochs = 3 }).Train(data, "rings", Tiny, dir.Path, "tiny", resumeFrom: dir.Path);
        Assert.Equal(6, second.Steps);
        Assert.Equal(3, second.CompletedEpochs);
        var steps = File.ReadAllLines(Path.Combine(dir.Path, DlsganTrainer.LogFile)).Skip(1).Select(l => TrainingLogRow.Parse(l).Step).ToArray();
        Assert.Equal([2, 4, 6], steps);
    }

    [Fact]
    public void Resume_refuses_different_training_data()
    {
        using var dir = new TempDir();
        new DlsganTrainer(Quick with { Epochs = 1 }).Train(Synthetic.Rings(32), "rings", Tiny, dir.Path, "tiny");
        var ex = Assert.Throws<ArgumentException>(() =>
            new DlsganTrainer(Quick).Train(Synthetic.Rings(32, seed: 9), "rings", Tiny, dir.Path, "tiny", resumeFrom: dir.Path));
        Assert.Contains("differs", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cancellation_saves_a_resumable_checkpoint()
    {
        using var dir = new TempDir();
        using var cts = new CancellationTokenSource();
        var progress = new Progress(() => cts.Cancel());
        var result = new DlsganTrainer(Quick with { Epochs = 50, LogEverySteps = 1 }).Train(Synthetic.Rings(64), "rings", Tiny, dir.Path, "tiny", progress: progress, cancellationToken: cts.Token);
        Assert.True(result.Cancelled);
        Assert.InRange(result.Steps, 1, 3);
        Assert.True(File.Exists(Path.Combine(result.CheckpointDirectory, DlsganTrainer.TrainerStateFile)));
        using var loaded = Checkpoint.Load(result.CheckpointDirectory);
        Assert.Equal(result.Steps, loaded.Metadata.Training!.Steps);
    }

    [Theory]
    [InlineData(0, "epochs")]
    [InlineData(-1, "lambda-r1")]
    [InlineData(2, "variance-decay")]
    public void Invalid_options_name_the_setting(int value, string setting)
    {
        var options = setting switch
        {
            "epochs" => Quick with { Epochs = value },
            "lambda-r1" => Quick with { R1Weight = value },
            _ => Quick with { VarianceDecay = value },
        };
        var ex = Assert.Throws<ArgumentException>(() => new DlsganTrainer(options));
        Assert.StartsWith(setting, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cuda_request_without_cuda_fails_clearly()
    {
        if (TorchSharp.torch.cuda.is_available()) return;
        var ex = Assert.Throws<ArgumentException>(() => DlsganTrainer.ResolveDevice("cuda"));
        Assert.Contains("CUDA is not available", ex.Message, StringComparison.Ordinal);
    }

    private sealed class Progress(Action onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport();
    }
}
