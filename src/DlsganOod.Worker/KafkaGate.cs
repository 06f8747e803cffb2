using System.Diagnostics;
using System.Threading.Channels;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace DlsganOod.Worker;

/// <summary>
/// All Kafka wiring of the gate: client configuration (delivery guarantees are fixed here, not in settings),
/// the consume loop with backpressure, rebalance handling and offset commits.
/// </summary>
public sealed partial class KafkaGate : IDisposable
{
    private readonly GateOptions options;
    private readonly OffsetTracker tracker;
    private readonly GateMetrics metrics;
    private readonly ILogger log;
    private readonly IConsumer<byte[], byte[]> consumer;
    private readonly HashSet<TopicPartition> paused = [];
    /// <summary>Consumed but not yet handed to the full channel; only touched on the consume thread.</summary>
    private readonly Queue<InputMessage> held = new();
    private volatile bool assigned;

    public KafkaGate(GateOptions options, OffsetTracker tracker, GateMetrics metrics, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        this.tracker = tracker;
        this.metrics = metrics;
        this.log = log;
        consumer = new ConsumerBuilder<byte[], byte[]>(ConsumerConfig(options))
            .SetPartitionsAssignedHandler((_, parts) =>
            {
                if (log.IsEnabled(LogLevel.Information)) LogAssigned(log, string.Join(", ", parts));
                assigned = true;
            })
            .SetPartitionsRevokedHandler((_, parts) => OnRevoked(parts.Select(p => p.TopicPartition).ToArray()))
            .SetPartitionsLostHandler((_, parts) =>
            {
                // Lost (not revoked): another member may already own them; committing would be wrong.
                if (log.IsEnabled(LogLevel.Warning)) LogLost(log, string.Join(", ", parts));
                tracker.Forget(parts.Select(p => p.TopicPartition));
                lock (paused) paused.ExceptWith(parts.Select(p => p.TopicPartition));
            })
            .SetErrorHandler((_, e) => LogKafkaError(log, e.Code.ToString(), e.Reason, e.IsFatal))
            .SetLogHandler((_, m) => { if (m.Level <= SyslogLevel.Warning) LogLibrdkafka(log, m.Facility, m.Message); })
            .Build();
    }

    public bool IsAssigned => assigned;
    public IConsumer<byte[], byte[]> Consumer => consumer;

    public static ClientConfig SecurityConfig(KafkaOptions k)
    {
        ArgumentNullException.ThrowIfNull(k);
        var c = new ClientConfig { BootstrapServers = k.BootstrapServers, SecurityProtocol = Enum.Parse<SecurityProtocol>(k.SecurityProtocol.Replace("_", "", StringComparison.Ordinal), ignoreCase: true) };
        if (!string.IsNullOrEmpty(k.SaslMechanism))
        {
            c.SaslMechanism = k.SaslMechanism switch
            {
                "PLAIN" => SaslMechanism.Plain,
                "SCRAM-SHA-256" => SaslMechanism.ScramSha256,
                "SCRAM-SHA-512" => SaslMechanism.ScramSha512,
                _ => throw new ArgumentException($"Kafka:SaslMechanism: unsupported '{k.SaslMechanism}'"),
            };
            c.SaslUsername = k.SaslUsername;
            c.SaslPassword = k.SaslPassword;
        }
        if (!string.IsNullOrEmpty(k.SslCaLocation)) c.SslCaLocation = k.SslCaLocation;
        return c;
    }

    public static ConsumerConfig ConsumerConfig(GateOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return new ConsumerConfig(SecurityConfig(o.Kafka))
        {
            GroupId = o.Kafka.GroupId,
            ClientId = $"dlsgan-ood-{Environment.MachineName}-{Environment.ProcessId}",
            // Offsets are committed by this code from the per-partition watermark, never automatically.
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            IsolationLevel = IsolationLevel.ReadCommitted,
            // librdkafka's prefetch is bounded (64 MiB) so memory stays bounded while the channel is full. Fetch
            // sizes are generous: a whole record batch must fit (brokers that do not split batches exist).
            QueuedMaxMessagesKbytes = 64 * 1024,
            FetchMaxBytes = 50 * 1024 * 1024,
            MaxPartitionFetchBytes = Math.Max(8 * 1024 * 1024, 2 * o.Limits.MaxMessageBytes),
            EnablePartitionEof = false,
            // A fetch returns at once when data is there; waiting at most 100 ms when idle keeps latency low at low rates.
            FetchWaitMaxMs = 100,
            SessionTimeoutMs = o.Kafka.SessionTimeoutMs,
            HeartbeatIntervalMs = Math.Max(100, o.Kafka.SessionTimeoutMs / 3),
        };
    }

    public static ProducerConfig ProducerConfig(GateOptions o, string? transactionalId)
    {
        ArgumentNullException.ThrowIfNull(o);
        var c = new ProducerConfig(SecurityConfig(o.Kafka))
        {
            ClientId = $"dlsgan-ood-out-{Environment.MachineName}-{Environment.ProcessId}",
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 2,
            MessageMaxBytes = Math.Max(1_000_000, o.Limits.MaxMessageBytes + 64 * 1024),
            EnableDeliveryReports = true,
        };
        if (transactionalId is not null) c.TransactionalId = transactionalId;
        return c;
    }

    /// <summary>
    /// Reads until <paramref name="stop"/>; every message is tracked then written to the channel. When the
    /// channel stays full the assigned partitions are paused (the consumer keeps polling for group duties) and
    /// resumed once everything held has been handed over. On stop, held messages are handed over and the
    /// channel completed so the pipeline can drain.
    /// </summary>
    public void Run(ChannelWriter<InputMessage> writer, TimeSpan drainTimeout, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(writer);
        consumer.Subscribe(options.Kafka.InputTopics);
        var commitClock = Stopwatch.StartNew();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                HandOver(writer, stop);

                ConsumeResult<byte[], byte[]>? result = null;
                try
                {
                    result = consumer.Consume(TimeSpan.FromMilliseconds(held.Count > 0 ? 20 : 100));
                }
                catch (ConsumeException ex)
                {
                    LogConsumeError(log, ex.Error.Reason);
                    if (ex.Error.IsFatal) throw;
                }
                if (result?.Message is { } m)
                {
                    var input = new InputMessage(result.TopicPartitionOffset, m.Key, m.Value, m.Headers ?? [], m.Timestamp, Stopwatch.GetTimestamp());
                    tracker.Track(input.Source);
                    metrics.Consumed.Inc();
                    if (held.Count > 0 || !writer.TryWrite(input)) held.Enqueue(input);
                }
                if (commitClock.ElapsedMilliseconds >= options.Delivery.CommitIntervalMs)
                {
                    CommitWatermarks();
                    UpdateLag();
                    commitClock.Restart();
                }
            }
            // Stop: hand over what was consumed, then let the pipeline drain.
            var deadline = DateTime.UtcNow + drainTimeout;
            while (held.Count > 0 && DateTime.UtcNow < deadline)
            {
                if (writer.TryWrite(held.Peek())) held.Dequeue();
                else Thread.Sleep(5);
            }
        }
        finally
        {
            writer.TryComplete();
        }
    }

    /// <summary>
    /// A full channel usually frees a batch's worth within one batch time, so the consume thread first waits up
    /// to <see cref="PauseAfter"/> for room: that keeps librdkafka's prefetched messages, which pausing would
    /// drop (a fetch round trip on resume, during which the inference thread starved: measured 0.5 of the
    /// encoder's throughput with pause-at-once against 0.9 with this). Only a channel that stays full (a slow
    /// or stuck scorer) pauses the partitions, and polling goes on for group duties.
    /// </summary>
    private void HandOver(ChannelWriter<InputMessage> writer, CancellationToken stop)
    {
        while (held.Count > 0 && writer.TryWrite(held.Peek())) held.Dequeue();
        if (held.Count == 0)
        {
            ResumeAll();
            return;
        }
        if (paused.Count > 0) return;
        var waited = Stopwatch.StartNew();
        while (held.Count > 0 && waited.Elapsed < PauseAfter && BatchingLoop.Block(writer.WaitToWriteAsync, PauseAfter - waited.Elapsed, stop))
            while (held.Count > 0 && writer.TryWrite(held.Peek())) held.Dequeue();
        if (held.Count > 0) PauseAll();
    }

    internal static readonly TimeSpan PauseAfter = TimeSpan.FromMilliseconds(250);

    private void PauseAll()
    {
        var toPause = consumer.Assignment.Where(tp => !paused.Contains(tp)).ToList();
        if (toPause.Count == 0) return;
        if (paused.Count == 0) metrics.BackpressurePauses.Inc();
        consumer.Pause(toPause);
        lock (paused) paused.UnionWith(toPause);
        metrics.PausedPartitions.Set(paused.Count);
    }

    private void ResumeAll()
    {
        if (paused.Count == 0) return;
        List<TopicPartition> toResume;
        lock (paused)
        {
            toResume = paused.Intersect(consumer.Assignment).ToList();
            paused.Clear();
        }
        if (toResume.Count > 0) consumer.Resume(toResume);
        metrics.PausedPartitions.Set(0);
    }

    /// <summary>Commits every partition's watermark that moved (at-least-once mode only).</summary>
    public void CommitWatermarks(IReadOnlyCollection<TopicPartition>? only = null)
    {
        if (options.Delivery.ExactlyOnce) return;
        var offsets = tracker.TakeCommittable(only);
        if (offsets.Count == 0) return;
        try
        {
            consumer.Commit(offsets);
        }
        catch (KafkaException ex)
        {
            // Not fatal: the watermark is recomputed and committed again on the next tick.
            LogCommitFailed(log, ex.Error.Reason);
            tracker.ForgetCommitted(offsets);
        }
    }

    private void OnRevoked(IReadOnlyCollection<TopicPartition> parts)
    {
        if (log.IsEnabled(LogLevel.Information)) LogRevoked(log, string.Join(", ", parts));
        // Held messages of these partitions never reached the pipeline: drop them and keep the watermark below them.
        var keep = held.Where(m => !parts.Contains(m.Source.TopicPartition)).ToArray();
        tracker.Drop(held.Where(m => parts.Contains(m.Source.TopicPartition)).Select(m => m.Source));
        held.Clear();
        foreach (var m in keep) held.Enqueue(m);
        // Finish what is in flight for these partitions, commit it, then let them go.
        if (!tracker.WaitDrained(parts, TimeSpan.FromSeconds(options.Delivery.ShutdownTimeoutSeconds)))
            LogRevokeTimeout(log, tracker.InFlightCount);
        CommitWatermarks(parts);
        tracker.Forget(parts);
        lock (paused) paused.ExceptWith(parts);
        if (consumer.Assignment.Except(parts).Any() is false) assigned = false;
    }

    private void UpdateLag()
    {
        metrics.ChannelDepthSource?.Invoke();
        foreach (var tp in consumer.Assignment)
        {
            try
            {
                var w = consumer.GetWatermarkOffsets(tp);
                var position = consumer.Position(tp);
                if (w.High.Value >= 0 && position.Value >= 0)
                    metrics.ConsumerLag.WithLabels(tp.Topic, tp.Partition.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)).Set(Math.Max(0, w.High.Value - position.Value));
            }
            catch (KafkaException)
            {
                // Lag is best effort; the next tick tries again.
            }
        }
    }

    /// <summary>Final commit and leaving the group (at-least-once: commits the watermark first).</summary>
    public void Close()
    {
        CommitWatermarks();
        try
        {
            consumer.Close();
        }
        catch (KafkaException ex)
        {
            LogCommitFailed(log, ex.Error.Reason);
        }
    }

    public void Dispose() => consumer.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "Partitions assigned: {Partitions}")]
    private static partial void LogAssigned(ILogger logger, string partitions);
    [LoggerMessage(Level = LogLevel.Information, Message = "Partitions revoked: {Partitions}")]
    private static partial void LogRevoked(ILogger logger, string partitions);
    [LoggerMessage(Level = LogLevel.Warning, Message = "Partitions lost: {Partitions}; their in-flight work is dropped uncommitted")]
    private static partial void LogLost(ILogger logger, string partitions);
    [LoggerMessage(Level = LogLevel.Warning, Message = "Revocation timed out with {InFlight} messages still in flight; they will be re-read by the new owner")]
    private static partial void LogRevokeTimeout(ILogger logger, int inFlight);
    [LoggerMessage(Level = LogLevel.Warning, Message = "Kafka error {Code}: {Reason} (fatal: {Fatal})")]
    private static partial void LogKafkaError(ILogger logger, string code, string reason, bool fatal);
    [LoggerMessage(Level = LogLevel.Warning, Message = "librdkafka {Facility}: {Message}")]
    private static partial void LogLibrdkafka(ILogger logger, string facility, string message);
    [LoggerMessage(Level = LogLevel.Warning, Message = "Consume error: {Reason}")]
    private static partial void LogConsumeError(ILogger logger, string reason);
    [LoggerMessage(Level = LogLevel.Warning, Message = "Offset commit failed: {Reason}; will retry")]
    private static partial void LogCommitFailed(ILogger logger, string reason);
}
