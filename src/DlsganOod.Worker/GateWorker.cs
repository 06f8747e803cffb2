using System.Threading.Channels;
using Confluent.Kafka;
using DlsganOod.Core.Imaging;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DlsganOod.Worker;

/// <summary>
/// The streaming OOD gate: consume thread → bounded channel → micro-batches → one inference thread that owns
/// the model → output records. Stopping stops consumption, drains the channel, waits for every output to be
/// acknowledged, commits and leaves the group, within Delivery:ShutdownTimeoutSeconds.
/// </summary>
public sealed partial class GateWorker : BackgroundService
{
    private readonly GateOptions options;
    private readonly ModelProvider models;
    private readonly GateMetrics metrics;
    private readonly ILogger<GateWorker> log;
    private readonly IHostApplicationLifetime lifetime;
    private readonly DriftMonitor drift;
    private KafkaGate? gate;
    private Channel<InputMessage>? channel;

    public GateWorker(IOptions<GateOptions> options, ModelProvider models, GateMetrics metrics, ILogger<GateWorker> log, IHostApplicationLifetime lifetime)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options.Value;
        this.models = models;
        this.metrics = metrics;
        this.log = log;
        this.lifetime = lifetime;
        drift = new DriftMonitor(this.options.Metrics.DriftWindow);
    }

    /// <summary>Every verdict whose outputs were all acknowledged (in-process observers: demo, tests).</summary>
    public event Action<Verdict>? Completed;

    /// <summary>Raised on the inference thread after each batch is scored: (batch number, model version, size).</summary>
    public event Action<long, string, int>? BatchScored;

    public bool IsReady => models.Current is not null && gate?.IsAssigned == true;
    public DriftMonitor Drift => drift;
    public Exception? Failure { get; private set; }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Factory.StartNew(() => Run(stoppingToken), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Run(CancellationToken stoppingToken)
    {
        var shutdown = TimeSpan.FromSeconds(options.Delivery.ShutdownTimeoutSeconds);
        if (models.Current is null) models.Load(options.Model.Path, score: options.Model.Score);
        var tracker = new OffsetTracker();
        channel = Channel.CreateBounded<InputMessage>(new BoundedChannelOptions(options.Batching.ChannelCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
        metrics.ChannelDepthSource = () => metrics.ChannelDepth.Set(channel.Reader.Count);
        var exactlyOnce = options.Delivery.ExactlyOnce;
        var transactionalId = exactlyOnce
            ? options.Kafka.TransactionalIdPrefix ?? $"{options.Kafka.GroupId}-{Environment.MachineName}-{Environment.ProcessId}"
            : null;
        // Transactional calls get half the shutdown budget, so a wedged one is detected (and its producer
        // replaced) before shutdown gives up on the inference thread.
        var transactionTimeout = shutdown / 2;
        IProducer<byte[], byte[]> BuildProducer()
        {
            var p = new ProducerBuilder<byte[], byte[]>(KafkaGate.ProducerConfig(options, transactionalId))
                .SetErrorHandler((_, e) => LogProducerError(log, e.Reason, e.IsFatal))
                .SetLogHandler((_, m) => { if (m.Level <= SyslogLevel.Warning) LogProducerError(log, $"{m.Facility}: {m.Message}", false); })
                .Build();
            if (exactlyOnce) p.InitTransactions(shutdown);
            return p;
        }
        gate = new KafkaGate(options, tracker, metrics, log);
        var publisher = new OutputPublisher(BuildProducer(), options.Kafka, tracker, metrics, log, exactlyOnce ? BuildProducer : null);
        publisher.Completed += v => Completed?.Invoke(v);
        var engine = new ScoringEngine(new DecodeLimits(options.Limits.MaxMessageBytes, options.Limits.MaxPixels));

        Exception? inferenceError = null;
        var inference = new Thread(() =>
        {
            try
            {
                InferenceLoop(channel.Reader, tracker, engine, publisher, exactlyOnce, transactionTimeout);
            }
            // A producer still wedged after every replacement attempt stops the gate like any fatal Kafka error.
            catch (Exception ex) when (ex is KafkaException or InvalidOperationException or ProducerWedgedException)
            {
                inferenceError = ex;
                LogFatal(log, ex.Message);
                lifetime.StopApplication();
            }
        })
        { IsBackground = true, Name = "dlsgan-ood-inference" };
        inference.Start();
        try
        {
            gate.Run(channel.Writer, shutdown, stoppingToken);
        }
        catch (KafkaException ex)
        {
            Failure = ex;
            LogFatal(log, ex.Message);
            lifetime.StopApplication();
        }
        finally
        {
            channel.Writer.TryComplete();
        }
        var deadline = DateTime.UtcNow + shutdown;
        var drained = inference.Join(shutdown);
        if (!drained) LogDrainTimeout(log, "inference", tracker.InFlightCount);
        var left = deadline - DateTime.UtcNow;
        if (!exactlyOnce && publisher.Producer.Flush(left > TimeSpan.Zero ? left : TimeSpan.FromSeconds(1)) > 0)
            LogDrainTimeout(log, "producer", tracker.InFlightCount);
        publisher.Abandon();
        // Destroying a producer while the inference thread is still inside one of its calls aborts the process.
        if (drained || inference.Join(TimeSpan.FromSeconds(5))) publisher.Producer.Dispose();
        gate.Close();
        gate.Dispose();
        Failure ??= inferenceError;
        LogStopped(log, tracker.InFlightCount);
    }

    private void InferenceLoop(ChannelReader<InputMessage> reader, OffsetTracker tracker, ScoringEngine engine, OutputPublisher publisher, bool exactlyOnce, TimeSpan timeout)
    {
        var maxWait = TimeSpan.FromMilliseconds(options.Batching.MaxWaitMs);
        long batchNumber = 0;
        foreach (var batch in BatchingLoop.Batches(reader, options.Batching.MaxBatchSize, maxWait, CancellationToken.None))
        {
            // Messages of partitions revoked or lost meanwhile belong to another worker now.
            var owned = batch.Where(m => tracker.IsTracked(m.Source.TopicPartition)).ToArray();
            if (owned.Length == 0) continue;
            var slot = models.Current!;
            IReadOnlyList<Verdict> verdicts;
            try
            {
                verdicts = engine.Score(slot, owned, metrics);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // A batch the model cannot score must still end in verdicts, never in a crash or a silent skip.
                LogBatchFailed(log, owned.Length, ex.Message);
                var now = DateTimeOffset.UtcNow;
                verdicts = owned.Select(m => new Verdict(m, VerdictKind.DeadLetter, ErrorCode: "scoring_failed", ErrorMessage: ex.Message, Model: slot.Identity, DecidedAt: now)).ToArray();
            }
            var number = ++batchNumber;
            verdicts = verdicts.Select(v => v with { Batch = number }).ToArray();
            BatchScored?.Invoke(number, slot.Identity.Version, owned.Length);
            metrics.BatchSize.Observe(owned.Length);
            foreach (var v in verdicts)
            {
                if (v.Kind == VerdictKind.DeadLetter) continue;
                metrics.Scored.Inc();
                if (v.Kind == VerdictKind.Ood) metrics.Flagged.Inc();
                drift.Add(v.Kind == VerdictKind.Ood);
            }
            UpdateDrift(slot.CalibratedFpr);
            ScoreShadow(owned, verdicts, engine);
            if (exactlyOnce) publisher.PublishInTransaction(verdicts, () => gate!.Consumer.ConsumerGroupMetadata, timeout);
            else publisher.Publish(verdicts);
        }
    }

    /// <summary>The shadow model scores the same batch; only metrics come out of it.</summary>
    private void ScoreShadow(InputMessage[] batch, IReadOnlyList<Verdict> served, ScoringEngine engine)
    {
        if (models.Shadow is not { } shadow) return;
        IReadOnlyList<Verdict> shadowVerdicts;
        try
        {
            shadowVerdicts = engine.Score(shadow, batch);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogBatchFailed(log, batch.Length, "shadow: " + ex.Message);
            return;
        }
        var stats = models.ShadowStats;
        for (var i = 0; i < served.Count; i++)
        {
            if (served[i].Kind == VerdictKind.DeadLetter || shadowVerdicts[i].Kind == VerdictKind.DeadLetter) continue;
            stats.Record(shadowVerdicts[i].Kind == VerdictKind.Ood, shadowVerdicts[i].Kind == served[i].Kind);
            metrics.ShadowScored.Inc();
        }
        if (stats.Scored > 0)
        {
            metrics.ShadowOodRate.WithLabels(shadow.Identity.Version).Set(stats.Flagged / (double)stats.Scored);
            metrics.ShadowAgreement.WithLabels(shadow.Identity.Version).Set(stats.Agreed / (double)stats.Scored);
        }
    }

    private void UpdateDrift(double calibratedFpr)
    {
        var (k, n) = drift.Snapshot();
        if (n == 0) return;
        metrics.OodRate.Set(k / (double)n);
        if (n < 50) return; // too few for the test to mean anything
        var p = DriftMonitor.BinomialTwoSidedPValue(k, n, calibratedFpr);
        metrics.DriftPValue.Set(p);
        metrics.Drift.Set(p < options.Metrics.DriftAlpha ? 1 : 0);
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "Gate stopping after a fatal error: {Reason}")]
    private static partial void LogFatal(ILogger logger, string reason);
    [LoggerMessage(Level = LogLevel.Error, Message = "Batch of {Count} could not be scored ({Reason}); dead-lettered")]
    private static partial void LogBatchFailed(ILogger logger, int count, string reason);
    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutdown: {Stage} did not finish in time; {InFlight} messages stay uncommitted and will be re-read")]
    private static partial void LogDrainTimeout(ILogger logger, string stage, int inFlight);
    [LoggerMessage(Level = LogLevel.Warning, Message = "Producer error: {Reason} (fatal: {Fatal})")]
    private static partial void LogProducerError(ILogger logger, string reason, bool fatal);
    [LoggerMessage(Level = LogLevel.Information, Message = "Gate stopped; {InFlight} messages left uncommitted")]
    private static partial void LogStopped(ILogger logger, int inFlight);
}
