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

    /// <summary>A candidate scored beside the served model (writes nothing); null when none.</summary>
    public ModelSlot? Shadow => Volatile.Read(ref shadow);

    /// <summary>When the last swap took effect (UTC), for tests and the swap benchmark.</summary>
    public DateTimeOffset? LastSwapAt { get; private set; }

    private ModelSlot? shadow;

    /// <summary>Loads and verifies a checkpoint (manifest, architecture, calibration, finite weights) and serves it.</summary>
    public ModelSlot Load(string? path, string? version = null, string score = OodScoreModel.LogLikelihood)
    {
        var folder = string.IsNullOrWhiteSpace(path) ? Checkpoint.FindDefault() : Checkpoint.Resolve(path);
        ModelSlot slot;
        try
        {
            slot = OpenSlot(folder, version, score);
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

    /// <summary>
    /// Loads an announced version and checks it before it may serve: the manifest hash equals the announced
    /// SHA-256, its preprocessing equals the running one, and a smoke batch scores finite. Null (and a logged
    /// reason, and the failure metric) when refused; the current model keeps serving.
    /// </summary>
    public ModelSlot? TryLoadVersion(ModelEvent announced, string score)
    {
        ArgumentNullException.ThrowIfNull(announced);
        ModelSlot? slot = null;
        try
        {
            slot = OpenSlot(announced.Uri, announced.Version, score, checkpoint =>
            {
                if (!string.Equals(checkpoint.Sha256, announced.Sha256, StringComparison.OrdinalIgnoreCase))
                    throw new CheckpointException($"{announced.Uri}: manifest sha256 {checkpoint.Sha256} differs from the announced {announced.Sha256}");
                if (Current is { } running && running.Checkpoint.Model.Preprocessing != checkpoint.Model.Preprocessing)
                    throw new CheckpointException($"{announced.Uri}: preprocessing {checkpoint.Model.Preprocessing} differs from the running {running.Checkpoint.Model.Preprocessing}");
            });
            SmokeTest(slot);
            return slot;
        }
        catch (Exception ex) when (ex is CheckpointException or IOException or InvalidDataException or ArgumentException or InvalidOperationException)
        {
            slot?.Dispose();
            metrics.ModelLoadFailures.Inc();
            LogLoadFailed(log, $"{announced.Name}/{announced.Version}", ex.Message);
            return null;
        }
    }

    /// <summary>Loads a checkpoint, runs <paramref name="verify"/> on it and wraps it in a slot; the checkpoint is
    /// released if any of that fails.</summary>
    private static ModelSlot OpenSlot(string folder, string? version, string score, Action<LoadedCheckpoint>? verify = null)
    {
        var checkpoint = Checkpoint.Load(folder);
        try
        {
            verify?.Invoke(checkpoint);
            return new ModelSlot(checkpoint, version, score);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    private static void SmokeTest(ModelSlot slot)
    {
        var p = slot.Checkpoint.Model.Preprocessing;
        var rng = new Random(7);
        var batch = Enumerable.Range(0, 4).Select(i =>
        {
            var pixels = new byte[p.InputSize];
            if (i == 1) Array.Fill(pixels, (byte)255);
            if (i >= 2) rng.NextBytes(pixels);
            return new InputMessage(new Confluent.Kafka.TopicPartitionOffset("smoke", 0, i), null, pixels,
                new Confluent.Kafka.Headers { { MessageDecoder.ContentTypeHeader, System.Text.Encoding.UTF8.GetBytes(MessageDecoder.RawContentType(p.InputWidth, p.InputHeight, p.Channels)) } },
                Confluent.Kafka.Timestamp.Default, 0);
        }).ToArray();
        var verdicts = new ScoringEngine(Core.Imaging.DecodeLimits.Default).Score(slot, batch);
        if (verdicts.Any(v => v.Kind == VerdictKind.DeadLetter || !double.IsFinite(v.ScoreValue)))
            throw new InvalidDataException($"{slot.Checkpoint.Directory}: smoke batch did not score finite ({string.Join(", ", verdicts.Select(v => v.ErrorMessage ?? v.ScoreValue.ToString(System.Globalization.CultureInfo.InvariantCulture)))})");
    }

    public void ServeShadow(ModelSlot? slot)
    {
        var previous = Interlocked.Exchange(ref shadow, slot);
        if (previous is not null)
        {
            metrics.ShadowOodRate.WithLabels(previous.Identity.Version).Unpublish();
            metrics.ShadowAgreement.WithLabels(previous.Identity.Version).Unpublish();
            lock (retired) retired.Add(previous);
        }
        ShadowStats = new ShadowCounts();
        if (slot is not null) LogShadow(log, slot.Identity.Version);
    }

    /// <summary>Counts behind the shadow gauges (reset when the shadow changes).</summary>
    public ShadowCounts ShadowStats { get; private set; } = new();

    public sealed class ShadowCounts
    {
        private long scored;
        private long flagged;
        private long agreed;

        public long Scored => Interlocked.Read(ref scored);
        public long Flagged => Interlocked.Read(ref flagged);
        public long Agreed => Interlocked.Read(ref agreed);

        public void Record(bool shadowFlagged, bool agrees)
        {
            Interlocked.Increment(ref scored);
            if (shadowFlagged) Interlocked.Increment(ref flagged);
            if (agrees) Interlocked.Increment(ref agreed);
        }
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
        LastSwapAt = DateTimeOffset.UtcNow;
        // The previous slot may still be scoring the batch in flight; it is released with the provider.
        if (previous is not null)
        {
            metrics.ModelSwaps.Inc();
            lock (retired) retired.Add(previous);
        }
    }

    private readonly List<ModelSlot> retired = [];

    public void Dispose()
    {
        current?.Dispose();
        shadow?.Dispose();
        lock (retired) foreach (var r in retired) r.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Shadow model {Version} loaded: it scores every batch and writes nothing")]
    private static partial void LogShadow(ILogger logger, string version);

    [LoggerMessage(Level = LogLevel.Error, Message = "Refused model {Path}: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Serving model {Name} version {Version} (threshold {Threshold})")]
    private static partial void LogServing(ILogger logger, string name, string version, double threshold);
}
