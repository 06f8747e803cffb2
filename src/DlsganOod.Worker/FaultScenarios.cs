using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using DlsganOod.Core.Imaging;
using Microsoft.Extensions.Logging;

namespace DlsganOod.Worker;

/// <summary>A gate that can be killed hard (a separate process).</summary>
public interface IKillable : IDisposable
{
    void Kill();
}

/// <summary>One fault run: what was injected and what came out. The invariant: every input offset ends with
/// exactly one verdict record (pass, quarantine or dead-letter); duplicates only where at-least-once allows.</summary>
public sealed record FaultResult(
    string Scenario, string Injection, bool ExactlyOnce, int MessagesIn, int VerdictRecords, int Lost, int Duplicates,
    double LongestStallSeconds, double Seconds)
{
    public string ToMarkdownRow() => string.Create(CultureInfo.InvariantCulture,
        $"| {Scenario} | {(ExactlyOnce ? "exactly-once" : "at-least-once")} | {Injection} | {MessagesIn} | {VerdictRecords} | {Lost} | {Duplicates} | {LongestStallSeconds:F1} s |");

    public const string MarkdownHeader = "| scenario | mode | injection | messages in | verdict records | lost | duplicates | longest stall |\n|---|---|---|---:|---:|---:|---:|---:|";
}

/// <summary>
/// Faults injected into librdkafka's mock cluster (rd_kafka_mock_* through <see cref="MockKafkaCluster"/>) while
/// a steady stream flows through a gate; used by the tests and by `dlsgan-ood faults` for docs/reliability.md.
/// "Longest stall" is the longest time without a new verdict from the start of the fault on (verdict times are
/// the output records' timestamps, set when the gate produced them), so a gate that stalls shows it.
/// </summary>
public static class FaultScenarios
{
    public const string Input = "images";
    public const string Pass = "dlsgan-ood.pass";
    public const string Quarantine = "dlsgan-ood.quarantine";
    public const string DeadLetter = "dlsgan-ood.dead-letter";
    private static readonly string[] VerdictTopics = [Pass, Quarantine, DeadLetter];

    // Kafka API keys (protocol numbers) used for injected request errors.
    private const short Produce = 0, Fetch = 1, OffsetCommit = 8, FindCoordinator = 10, JoinGroup = 11, Heartbeat = 12, SyncGroup = 14;

    public static readonly string[] Names = ["baseline", "broker-down", "produce-errors", "fetch-errors", "commit-errors", "coordinator-errors", "rebalance", "kill"];

    /// <param name="images">PNG payloads to stream (cycled).</param>
    /// <param name="startWorker">Starts a gate against the cluster (returns a handle to stop it); scenarios may start several.</param>
    /// <param name="startProcess">Starts a gate in its own process (only the "kill" scenario needs it: killed hard mid-stream, then restarted).</param>
    public static FaultResult Run(string scenario, bool exactlyOnce, IReadOnlyList<byte[]> images, Func<MockKafkaCluster, IDisposable> startWorker,
        int messages = 600, int ratePerSecond = 150, Action<string>? log = null, Func<MockKafkaCluster, IKillable>? startProcess = null)
    {
        if (scenario == "kill" && startProcess is null) throw new ArgumentException("The kill scenario needs a gate in a separate process.");
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(startWorker);
        if (!Names.Contains(scenario)) throw new ArgumentException($"Unknown scenario '{scenario}'. Known: {string.Join(", ", Names)}.");
        var clock = Stopwatch.StartNew();
        var startUtc = DateTime.UtcNow;
        using var cluster = new MockKafkaCluster();
        cluster.CreateTopics(4, Input);
        cluster.CreateTopics(2, Pass, Quarantine, DeadLetter, "dlsgan-ood.alerts");
        var workers = new List<IDisposable> { scenario == "kill" ? startProcess!(cluster) : startWorker(cluster) };
        var injection = "none";
        var faultStart = TimeSpan.FromSeconds(messages / (double)ratePerSecond / 3);
        var faultLength = TimeSpan.FromSeconds(3);
        var produced = 0;
        var producer = Task.Run(() =>
        {
            using var p = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, EnableIdempotence = true, Acks = Acks.All, MessageTimeoutMs = 120_000 }).Build();
            var start = clock.Elapsed;
            for (var i = 0; i < messages; i++)
            {
                var due = start + TimeSpan.FromSeconds(i / (double)ratePerSecond);
                if (due > clock.Elapsed) Thread.Sleep(due - clock.Elapsed);
                var message = new Message<byte[], byte[]>
                {
                    Key = Encoding.UTF8.GetBytes($"m-{i}"), Value = images[i % images.Count],
                    Headers = new Headers { { MessageDecoder.ContentTypeHeader, "image/png"u8.ToArray() } },
                };
                while (true)
                {
                    try { p.Produce(Input, message); break; }
                    catch (ProduceException<byte[], byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull) { p.Poll(TimeSpan.FromMilliseconds(20)); }
                }
                Interlocked.Increment(ref produced);
            }
            p.Flush(TimeSpan.FromSeconds(120));
        });

        // Wait for the fault window, then inject.
        while (clock.Elapsed < faultStart) Thread.Sleep(20);
        switch (scenario)
        {
            case "broker-down":
                injection = string.Create(CultureInfo.InvariantCulture, $"rd_kafka_mock_broker_set_down for {faultLength.TotalSeconds:F0} s, then up");
                cluster.BrokerDown(cluster.BrokerIds[0]);
                Thread.Sleep(faultLength);
                cluster.BrokerUp(cluster.BrokerIds[0]);
                break;
            case "produce-errors":
                injection = "next 20 Produce requests: NOT_LEADER_FOR_PARTITION ×10, REQUEST_TIMED_OUT ×10";
                cluster.PushRequestErrors(Produce, [.. Enumerable.Repeat(ErrorCode.NotLeaderForPartition, 10), .. Enumerable.Repeat(ErrorCode.RequestTimedOut, 10)]);
                Thread.Sleep(faultLength);
                break;
            case "fetch-errors":
                injection = "next 20 Fetch requests: NOT_LEADER_FOR_PARTITION ×10, REQUEST_TIMED_OUT ×10";
                cluster.PushRequestErrors(Fetch, [.. Enumerable.Repeat(ErrorCode.NotLeaderForPartition, 10), .. Enumerable.Repeat(ErrorCode.RequestTimedOut, 10)]);
                Thread.Sleep(faultLength);
                break;
            case "commit-errors":
                injection = "next 10 OffsetCommit requests: COORDINATOR_NOT_AVAILABLE ×5, REQUEST_TIMED_OUT ×5";
                cluster.PushRequestErrors(OffsetCommit, [.. Enumerable.Repeat(ErrorCode.GroupCoordinatorNotAvailable, 5), .. Enumerable.Repeat(ErrorCode.RequestTimedOut, 5)]);
                Thread.Sleep(faultLength);
                break;
            case "coordinator-errors":
                injection = "Heartbeat ×5 NOT_COORDINATOR, FindCoordinator/JoinGroup/SyncGroup ×3 COORDINATOR_NOT_AVAILABLE";
                cluster.PushRequestErrors(Heartbeat, [.. Enumerable.Repeat(ErrorCode.NotCoordinatorForGroup, 5)]);
                cluster.PushRequestErrors(FindCoordinator, [.. Enumerable.Repeat(ErrorCode.GroupCoordinatorNotAvailable, 3)]);
                cluster.PushRequestErrors(JoinGroup, [.. Enumerable.Repeat(ErrorCode.GroupCoordinatorNotAvailable, 3)]);
                cluster.PushRequestErrors(SyncGroup, [.. Enumerable.Repeat(ErrorCode.GroupCoordinatorNotAvailable, 3)]);
                Thread.Sleep(faultLength);
                break;
            case "kill":
                injection = "worker process killed with SIGKILL mid-stream, then a new one started";
                ((IKillable)workers[0]).Kill();
                workers.RemoveAt(0);
                Thread.Sleep(TimeSpan.FromSeconds(1));
                workers.Add(startProcess!(cluster));
                break;
            case "rebalance":
                injection = "a second worker joins, later the first leaves";
                workers.Add(startWorker(cluster));
                Thread.Sleep(faultLength);
                workers[0].Dispose();
                workers.RemoveAt(0);
                break;
        }
        log?.Invoke($"{scenario}: {injection}");

        var verdicts = new Dictionary<string, int>(StringComparer.Ordinal);
        var firstVerdictAt = new Dictionary<int, double>();
        var total = 0;
        using (var reader = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers, GroupId = "fault-reader-" + Guid.NewGuid().ToString("N"),
            AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false, IsolationLevel = IsolationLevel.ReadCommitted,
        }).Build())
        {
            reader.Subscribe(VerdictTopics);
            var deadline = clock.Elapsed + TimeSpan.FromSeconds(90 + messages / (double)ratePerSecond);
            var quietSince = clock.Elapsed;
            while (clock.Elapsed < deadline)
            {
                ConsumeResult<byte[], byte[]>? r;
                try { r = reader.Consume(TimeSpan.FromMilliseconds(100)); } catch (ConsumeException) { continue; }
                if (r?.Message?.Headers is { } h && h.TryGetLastBytes(OutputRecords.SourceHeader, out var source))
                {
                    var key = Encoding.UTF8.GetString(source);
                    verdicts[key] = verdicts.GetValueOrDefault(key) + 1;
                    total++;
                    quietSince = clock.Elapsed;
                    // When the gate produced the verdict (record timestamp), not when this reader got to it.
                    var producedAt = r.Message.Timestamp.Type == TimestampType.NotAvailable
                        ? clock.Elapsed.TotalSeconds
                        : (r.Message.Timestamp.UtcDateTime - startUtc).TotalSeconds;
                    if (InputIndex(r.Message.Key, messages) is { } index) firstVerdictAt.TryAdd(index, producedAt);
                }
                // Done when everything produced has a verdict and nothing more arrived for a while (late duplicates).
                if (producer.IsCompleted && verdicts.Count >= Volatile.Read(ref produced) && clock.Elapsed - quietSince > TimeSpan.FromSeconds(3)) break;
            }
            reader.Close();
        }
        foreach (var w in workers) w.Dispose();
        producer.Wait(TimeSpan.FromSeconds(30));
        // The invariant is about offsets in the input topic: read them all and look each one up.
        var inputs = InputOffsets(cluster);
        var lost = inputs.Count(o => !verdicts.ContainsKey(o));
        var duplicates = total - verdicts.Count;
        return new FaultResult(scenario, injection, exactlyOnce, inputs.Count, total, lost, duplicates,
            LongestStall(firstVerdictAt.Values, faultStart.TotalSeconds), clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The longest time without a new verdict from the start of the fault to the last verdict. Inputs arrive
    /// steadily, so a gap longer than a batch or two is the gate stalling or recovering; this also catches
    /// faults that bite after the injection (a session timing out seconds later).
    /// </summary>
    public static double LongestStall(IEnumerable<double> verdictTimes, double faultStart)
    {
        ArgumentNullException.ThrowIfNull(verdictTimes);
        var times = verdictTimes.Order().ToArray();
        var longest = 0.0;
        var previous = faultStart;
        foreach (var t in times)
        {
            if (t < faultStart) continue;
            longest = Math.Max(longest, t - previous);
            previous = t;
        }
        return longest;
    }

    /// <summary>The input index behind a verdict (key "m-i"), if it is one of this run's inputs.</summary>
    private static int? InputIndex(byte[]? key, int messages)
    {
        if (key is null) return null;
        var text = Encoding.UTF8.GetString(key);
        return text.StartsWith("m-", StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < messages ? i : null;
    }

    private static List<string> InputOffsets(MockKafkaCluster cluster)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers, GroupId = "fault-inputs-" + Guid.NewGuid().ToString("N"),
            AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false,
        }).Build();
        var partitions = Enumerable.Range(0, 4).Select(p => new TopicPartition(Input, p)).ToArray();
        var ends = partitions.ToDictionary(tp => tp, tp => consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10)).High.Value);
        consumer.Assign(partitions.Select(tp => new TopicPartitionOffset(tp, Offset.Beginning)));
        var result = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (result.Count < ends.Values.Sum() && DateTime.UtcNow < deadline)
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { Message: not null } r)
                result.Add($"{r.Topic}/{r.Partition.Value}/{r.Offset.Value}");
        consumer.Close();
        return result;
    }

    /// <summary>Settings for a gate under test on the mock cluster (fast rebalances and commits).</summary>
    public static Dictionary<string, string?> GateSettings(MockKafkaCluster cluster, string modelPath, bool exactlyOnce, string group = "fault-gate", int sessionTimeoutMs = 10_000)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        return new()
        {
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers,
            ["Kafka:GroupId"] = group,
            ["Kafka:InputTopics:0"] = Input,
            ["Kafka:PassTopic"] = Pass,
            ["Kafka:SessionTimeoutMs"] = sessionTimeoutMs.ToString(CultureInfo.InvariantCulture),
            ["Kafka:TransactionalIdPrefix"] = exactlyOnce ? "fault-" + Guid.NewGuid().ToString("N") : null,
            ["Model:Path"] = modelPath,
            ["Metrics:Port"] = "0",
            ["Metrics:BindAddress"] = "127.0.0.1",
            ["Delivery:ExactlyOnce"] = exactlyOnce ? "true" : "false",
            ["Delivery:CommitIntervalMs"] = "200",
            ["Delivery:ShutdownTimeoutSeconds"] = "20",
            ["Batching:MaxWaitMs"] = "5",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
        };
    }

    /// <summary>Starts an in-process gate; disposing it stops the gate gracefully.</summary>
    /// <param name="sessionTimeoutMs">Group session timeout: production's 10 s by default; the rebalance scenario uses 3 s because
    /// the mock coordinator waits about a session timeout for members to rejoin.</param>
    public static IDisposable StartInProcess(MockKafkaCluster cluster, string modelPath, bool exactlyOnce, int sessionTimeoutMs = 10_000, Action<ILoggingBuilder>? logging = null)
    {
        var app = WorkerHost.Build([], GateSettings(cluster, modelPath, exactlyOnce, sessionTimeoutMs: sessionTimeoutMs), logging ?? (l => l.SetMinimumLevel(LogLevel.Warning)));
        app.StartAsync().GetAwaiter().GetResult();
        return new Stopper(() =>
        {
            app.StopAsync().GetAwaiter().GetResult();
            app.DisposeAsync().AsTask().GetAwaiter().GetResult();
        });
    }

    private sealed class Stopper(Action stop) : IDisposable
    {
        private int done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref done, 1) == 0) stop();
        }
    }
}
