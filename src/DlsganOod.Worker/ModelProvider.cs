using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;
using Microsoft.Extensions.Logging;

namespace DlsganOod.Worker;

/// <summary>
/// Holds the served model. The inference thread reads <see cref="Current"/> once per batch, so a swap
/// always falls between two batches and no batch is scored by two versions.
/// </summary>
public sealed partial class ModelProvider : IDisposable
{
    private readonly ILogger<ModelProvider> log;
    private readonly GateMetrics metrics;
    private ModelSlot? current;

    public ModelProvider(ILogger<ModelProvider> log, GateMetrics metrics)
    {
        this.log = log;
        this.metrics = metrics;
    }

    public ModelSlot? Current => Volatile.Read(ref current);

    /// <summary>Loads and verifies a checkpoint (manifest, architecture, calibration, finite weights) and serves it.</summary>
    public ModelSlot Load(string? path, string? version = null, string score = OodScoreModel.LogLikelihood)
    {
        var folder = string.IsNullOrWhiteSpace(path) ? Checkpoint.FindDefault() : Checkpoint.Resolve(path);
        ModelSlot slot;
        try
        {
            var checkpoint = Checkpoint.Load(folder);
            try
            {
                slot = new ModelSlot(checkpoint, version, score);
            }
            catch
            {
                checkpoint.Dispose();
                throw;
            }
        }
        catch (CheckpointException ex)
        {
            metrics.ModelLoadFailures.Inc();
            LogLoadFailed(log, folder, ex.Message);
            throw;
        }
        Serve(slot);
        return slot;
    }

    public void Serve(ModelSlot slot)
    {
        ArgumentNullException.ThrowIfNull(slot);
        var previous = Interlocked.Exchange(ref current, slot);
        if (previous is not null) metrics.ModelInfo.WithLabels(previous.Identity.Name, previous.Identity.Version).Unpublish();
        metrics.ModelInfo.WithLabels(slot.Identity.Name, slot.Identity.Version).Set(1);
        metrics.Threshold.Set(slot.Threshold);
        metrics.CalibratedFpr.Set(slot.CalibratedFpr);
        LogServing(log, slot.Identity.Name, slot.Identity.Version, slot.Threshold);
        // The previous slot may still be scoring the batch in flight; it is released with the provider.
        if (previous is not null) retired.Add(previous);
    }

    private readonly List<ModelSlot> retired = [];

    public void Dispose()
    {
        current?.Dispose();
        foreach (var r in retired) r.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Refused model {Path}: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Serving model {Name} version {Version} (threshold {Threshold})")]
    private static partial void LogServing(ILogger logger, string name, string version, double threshold);
}
