using System.Collections.Concurrent;
using System.Reflection;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;

namespace DlsganOod.Worker.Tests;

/// <summary>
/// A transactional call that never returns (librdkafka #5456/#5511 after a coordinator broker went down) must not
/// stall the gate: the producer is replaced and the batch committed on the new one, with nothing produced twice.
/// </summary>
public class TransactionWatchdogTests
{
    [Fact]
    public void Wedged_send_offsets_replaces_the_producer_and_commits_the_batch_once()
    {
        using var release = new ManualResetEventSlim();
        var wedged = RecordingProducer.Create(blockSendOffsets: release);
        var fresh = RecordingProducer.Create(blockSendOffsets: null);
        var replacements = 0;
        var tracker = new OffsetTracker();
        var metrics = new GateMetrics();
        var topics = new KafkaOptions { PassTopic = "pass" };
        var publisher = new OutputPublisher(wedged.Proxy, topics, tracker, metrics, NullLogger.Instance, () =>
        {
            replacements++;
            return fresh.Proxy;
        });
        var done = new ConcurrentBag<string>();
        publisher.Completed += v => done.Add(v.Message.Id);
        var verdicts = Enumerable.Range(0, 5).Select(i =>
        {
            var source = new TopicPartitionOffset("images", 0, i);
            tracker.Track(source);
            var message = new InputMessage(source, System.Text.Encoding.UTF8.GetBytes($"m-{i}"), [1, 2, 3], [], Timestamp.Default, 0);
            return new Verdict(message, VerdictKind.Pass, LogLikelihood: -1, Threshold: -2);
        }).ToArray();

        try
        {
            publisher.PublishInTransaction(verdicts, () => null!, TimeSpan.FromMilliseconds(200));
        }
        finally
        {
            release.Set();
        }

        Assert.Equal(1, replacements);
        Assert.Same(fresh.Proxy, publisher.Producer);
        Assert.Equal(1, metrics.ProducerReplacements.Value);
        // Offsets go first: the wedged transaction produced nothing that could surface as a duplicate.
        Assert.Equal(0, wedged.Count("Produce"));
        Assert.Equal(0, wedged.Count("CommitTransaction"));
        Assert.Equal(1, fresh.Count("SendOffsetsToTransaction"));
        Assert.Equal(5, fresh.Count("Produce"));
        Assert.Equal(1, fresh.Count("CommitTransaction"));
        Assert.Equal(5, done.Count);
        Assert.Equal(5, Assert.Single(tracker.TakeCommittable()).Offset.Value);
    }

    /// <summary>An IProducer that records calls; optionally blocks in SendOffsetsToTransaction until released.</summary>
    public class RecordingProducer : DispatchProxy
    {
        private readonly ConcurrentDictionary<string, int> calls = new(StringComparer.Ordinal);
        private ManualResetEventSlim? block;

        public IProducer<byte[], byte[]> Proxy { get; private set; } = null!;

        public static RecordingProducer Create(ManualResetEventSlim? blockSendOffsets)
        {
            var proxy = Create<IProducer<byte[], byte[]>, RecordingProducer>();
            var self = (RecordingProducer)(object)proxy;
            self.block = blockSendOffsets;
            self.Proxy = proxy;
            return self;
        }

        public int Count(string method) => calls.GetValueOrDefault(method);

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            ArgumentNullException.ThrowIfNull(targetMethod);
            calls.AddOrUpdate(targetMethod.Name, 1, (_, n) => n + 1);
            if (targetMethod.Name == "SendOffsetsToTransaction") block?.Wait();
            var type = targetMethod.ReturnType;
            return type == typeof(void) || !type.IsValueType ? null : Activator.CreateInstance(type);
        }
    }
}
