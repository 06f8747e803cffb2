using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace DlsganOod.Worker;

/// <summary>
/// Produces each verdict's output records. At-least-once: asynchronous produce with delivery reports; a
/// message's offset is marked done in the <see cref="OffsetTracker"/> only when all its records are
/// acknowledged (acks=all, idempotent); failed deliveries are produced again. Exactly-once: one Kafka
/// transaction per batch carrying both the records and the consumed offsets.
/// </summary>
public sealed partial class OutputPublisher
{
    private IProducer<byte[], byte[]> producer;
    private readonly Func<IProducer<byte[], byte[]>>? replaceProducer;
    private readonly KafkaOptions topics;
    private readonly OffsetTracker tracker;
    private readonly GateMetrics metrics;
    private readonly ILogger log;
    private volatile bool abandoned;

    /// <param name="replaceProducer">Exactly-once: builds a ready (InitTransactions done) producer with the same
    /// transactional.id, used when the current one wedges.</param>
    public OutputPublisher(IProducer<byte[], byte[]> producer, KafkaOptions topics, OffsetTracker tracker, GateMetrics metrics, ILogger log,
        Func<IProducer<byte[], byte[]>>? replaceProducer = null)
    {
        this.producer = producer;
        this.replaceProducer = replaceProducer;
        this.topics = topics;
        this.tracker = tracker;
        this.metrics = metrics;
        this.log = log;
    }

    /// <summary>Raised after a verdict's records are all acknowledged (tests and the demo observe it).</summary>
    public event Action<Verdict>? Completed;

    private sealed class Pending(Verdict verdict, int outputs)
    {
        public Verdict Verdict { get; } = verdict;
        public int Remaining = outputs;
    }

    public void Publish(IReadOnlyList<Verdict> verdicts)
    {
        ArgumentNullException.ThrowIfNull(verdicts);
        foreach (var v in verdicts)
        {
            var outputs = OutputRecords.For(v, topics).ToArray();
            if (outputs.Length == 0)
            {
                Done(v);
                continue;
            }
            var pending = new Pending(v, outputs.Length);
            foreach (var (topic, record) in outputs) Produce(pending, topic, record);
        }
    }

    private void Produce(Pending pending, string topic, Message<byte[], byte[]> record)
    {
        while (!abandoned)
        {
            try
            {
                producer.Produce(topic, record, report => OnDelivery(pending, topic, record, report));
                return;
            }
            catch (ProduceException<byte[], byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
            {
                Thread.Sleep(5); // the producer's own poll thread drains the queue
            }
        }
    }

    private void OnDelivery(Pending pending, string topic, Message<byte[], byte[]> record, DeliveryReport<byte[], byte[]> report)
    {
        if (report.Error.IsError)
        {
            metrics.OutputRetries.Inc();
            LogDeliveryFailed(log, topic, pending.Verdict.Message.Source.ToString(), report.Error.Reason);
            // Produced again from a pool thread: never block librdkafka's delivery-report thread.
            _ = Task.Delay(200).ContinueWith(_ => Produce(pending, topic, record), TaskScheduler.Default);
            return;
        }
        if (Interlocked.Decrement(ref pending.Remaining) == 0) Done(pending.Verdict);
    }

    private void Done(Verdict v)
    {
        switch (v.Kind)
        {
            case VerdictKind.Ood:
                metrics.Quarantined.Inc();
                break;
            case VerdictKind.Pass:
                if (!string.IsNullOrEmpty(topics.PassTopic)) metrics.Passed.Inc();
                break;
            default:
                metrics.DeadLettered.WithLabels(v.ErrorCode ?? "unknown").Inc();
                break;
        }
        var ts = v.Message.Timestamp;
        if (ts.Type != TimestampType.NotAvailable)
            metrics.EndToEndSeconds.Observe(Math.Max(0, (DateTime.UtcNow - ts.UtcDateTime).TotalSeconds));
        tracker.Complete(v.Message.Source);
        Completed?.Invoke(v);
    }

    /// <summary>
    /// Exactly-once: the batch's next offsets and its records in one transaction; retried (after abort) on
    /// abortable errors, dropping partitions this worker no longer owns; fatal errors propagate. Offsets go
    /// first so that a transaction that wedges there has produced nothing yet.
    /// </summary>
    public void PublishInTransaction(IReadOnlyList<Verdict> verdicts, Func<IConsumerGroupMetadata> groupMetadata, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(verdicts);
        ArgumentNullException.ThrowIfNull(groupMetadata);
        var remaining = verdicts;
        for (var attempt = 1; ; attempt++)
        {
            // After the shutdown deadline nothing more is committed: the offsets stay uncommitted and are re-read.
            if (abandoned) return;
            remaining = remaining.Where(v => tracker.IsTracked(v.Message.Source.TopicPartition)).ToArray();
            if (remaining.Count == 0) return;
            try
            {
                LogTransactionStep(log, "begin", remaining.Count);
                producer.BeginTransaction();
                var offsets = remaining.GroupBy(v => v.Message.Source.TopicPartition)
                    .Select(g => new TopicPartitionOffset(g.Key, g.Max(v => v.Message.Source.Offset.Value) + 1)).ToArray();
                var group = groupMetadata();
                LogTransactionStep(log, "send offsets", remaining.Count);
                Guarded("send offsets", timeout, p => p.SendOffsetsToTransaction(offsets, group, timeout));
                foreach (var v in remaining)
                    foreach (var (topic, record) in OutputRecords.For(v, topics))
                        ProduceInTransaction(topic, record);
                LogTransactionStep(log, "commit", remaining.Count);
                Guarded("commit", timeout, p => CommitWithRetry(p, timeout));
                metrics.TransactionsCommitted.Inc();
                foreach (var v in remaining) Done(v);
                return;
            }
            catch (ProducerWedgedException wedged) when (attempt < 20)
            {
                metrics.TransactionsAborted.Inc();
                ReplaceWedgedProducer(wedged);
            }
            catch (KafkaException ex) when (!ex.Error.IsFatal && attempt < 20)
            {
                LogTransactionRetry(log, attempt, ex.Error.Reason);
                metrics.TransactionsAborted.Inc();
                try
                {
                    Guarded("abort", timeout, p => p.AbortTransaction(timeout));
                }
                catch (KafkaException abortError) when (!abortError.Error.IsFatal)
                {
                    LogTransactionRetry(log, attempt, "abort: " + abortError.Error.Reason);
                }
                catch (ProducerWedgedException wedged)
                {
                    ReplaceWedgedProducer(wedged);
                }
                Thread.Sleep(Math.Min(2000, 100 * attempt));
            }
        }
    }

    /// <summary>
    /// librdkafka can block a transactional call well past its own timeout: a coordinator request issued
    /// while the coordinator broker is being decommissioned (e.g. after it went down) is never retried
    /// (confluentinc/librdkafka#5456 and #5511, open in 2.16). The call runs on a pool thread; if it has not
    /// returned by its timeout plus a grace period, the producer is declared wedged.
    /// </summary>
    private void Guarded(string step, TimeSpan timeout, Action<IProducer<byte[], byte[]>> call)
    {
        var p = producer;
        var task = Task.Run(() => call(p));
        if (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(timeout + WedgeGrace))
            throw new ProducerWedgedException(step, timeout + WedgeGrace);
        task.GetAwaiter().GetResult();
    }

    private static readonly TimeSpan WedgeGrace = TimeSpan.FromSeconds(5);

    // Wedged producers are never disposed (a librdkafka call is still running inside them and destroying the
    // handle under it aborts the process); holding them here keeps their finalizers from doing so either.
    private static readonly List<IProducer<byte[], byte[]>> Wedged = [];

    /// <summary>
    /// A new producer with the same transactional.id: its InitTransactions bumps the producer epoch, which
    /// fences the wedged one and makes the coordinator abort its open transaction, so nothing it produced
    /// becomes visible to read_committed consumers. The batch is then retried on the new producer.
    /// </summary>
    private void ReplaceWedgedProducer(ProducerWedgedException wedged)
    {
        if (replaceProducer is null) throw new InvalidOperationException($"Transactional producer wedged in {wedged.Step} and cannot be replaced.", wedged);
        LogProducerWedged(log, wedged.Step, wedged.After.TotalSeconds);
        metrics.ProducerReplacements.Inc();
        lock (Wedged) Wedged.Add(producer);
        producer = replaceProducer();
    }

    /// <summary>The producer in use now (it changes when a wedged transactional producer is replaced).</summary>
    public IProducer<byte[], byte[]> Producer => producer;

    /// <summary>
    /// A retriable commit failure (e.g. a timeout) may have committed on the broker: commit again rather than
    /// abort, or the batch would be produced twice. Abortable and fatal errors go to the caller.
    /// </summary>
    private void CommitWithRetry(IProducer<byte[], byte[]> p, TimeSpan timeout)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                p.CommitTransaction(timeout);
                return;
            }
            catch (KafkaRetriableException ex) when (attempt < 30 && !abandoned)
            {
                LogTransactionRetry(log, attempt, "commit: " + ex.Error.Reason);
                Thread.Sleep(Math.Min(2000, 100 * attempt));
            }
        }
    }

    private void ProduceInTransaction(string topic, Message<byte[], byte[]> record)
    {
        while (true)
        {
            try
            {
                producer.Produce(topic, record);
                return;
            }
            catch (ProduceException<byte[], byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
            {
                Thread.Sleep(5);
            }
        }
    }

    /// <summary>Stops producing retries (after the shutdown deadline): their offsets stay uncommitted.</summary>
    public void Abandon() => abandoned = true;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Delivery to {Topic} failed for {Source}: {Reason}; producing again")]
    private static partial void LogDeliveryFailed(ILogger logger, string topic, string source, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Transactional producer wedged in {Step} (no return after {Seconds:F0} s); replacing it, which aborts its open transaction")]
    private static partial void LogProducerWedged(ILogger logger, string step, double seconds);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Transaction step {Step} for {Count} verdicts")]
    private static partial void LogTransactionStep(ILogger logger, string step, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Transaction attempt {Attempt} failed: {Reason}; aborted, retrying")]
    private static partial void LogTransactionRetry(ILogger logger, int attempt, string reason);
}

/// <summary>A transactional call did not return within its timeout plus a grace period.</summary>
public sealed class ProducerWedgedException(string step, TimeSpan after) : Exception($"Transactional producer wedged in {step} for {after.TotalSeconds:F0} s")
{
    public string Step { get; } = step;
    public TimeSpan After { get; } = after;
}
