using System.Collections.Concurrent;
using Confluent.Kafka;
using DlsganOod.Core.Data;
using DlsganOod.Core.Imaging;
using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;
using DlsganOod.Core.Tests;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace DlsganOod.Worker.Tests;

/// <summary>A tiny calibrated model whose threshold sits at the median score of the test images.</summary>
public sealed class TinyModel : IDisposable
{
    public TinyModel()
    {
        manual_seed(21);
        using var model = new DlsganModel(new ModelConfig { Preset = "test", BaseWidth = 2, LatentDim = 8 }, Preprocessing.Mnist);
        Images = Synthetic.Rings(40, seed: 3);
        var ll = Inference.Encode(model, Images).LogLikelihood.Order().ToArray();
        Threshold = (ll[19] + ll[20]) / 2;
        Path = Dir.File("model");
        // Mahalanobis statistics fitted on the first half; its threshold at that half's median.
        var features = ScoreFeatures.Compute(model, Images);
        Scores = OodScoreModel.Fit(ScoreFeatures.Compute(model, Images.Take(20)), "rings");
        var maha = Scores.Score(OodScoreModel.Mahalanobis, features).Order().ToArray();
        MahalanobisThreshold = (maha[19] + maha[20]) / 2;
        Checkpoint.Save(model, Path, new CheckpointMetadata
        {
            Name = "tiny",
            Calibration = new CalibrationRecord { Threshold = Threshold, TargetFpr = 0.5, AchievedFpr = 0.5, Count = 40 },
            ScoreCalibrations = new() { [OodScoreModel.Mahalanobis] = new CalibrationRecord { Score = OodScoreModel.Mahalanobis, Threshold = MahalanobisThreshold, TargetFpr = 0.5, AchievedFpr = 0.5, Count = 40 } },
        });
        Scores.Save(Path);
        Checkpoint.WriteManifest(Path);
    }

    public TempDir Dir { get; } = new();
    public string Path { get; }
    public double Threshold { get; }
    public double MahalanobisThreshold { get; }
    public OodScoreModel Scores { get; }
    public ImageSet Images { get; }
    public void Dispose() => Dir.Dispose();
}

public sealed record OutputRecord(string Topic, string? Key, byte[] Value, Dictionary<string, string> Headers, DateTime Timestamp)
{
    public string Source => Headers.TryGetValue(OutputRecords.SourceHeader, out var s) ? s : "";
}

public static class GateHarness
{
    public const string Input = "images";
    public const string Alerts = "dlsgan-ood.alerts";
    public const string Quarantine = "dlsgan-ood.quarantine";
    public const string Pass = "dlsgan-ood.pass";
    public const string DeadLetter = "dlsgan-ood.dead-letter";

    /// <summary>A mock cluster with the input topic (given partitions) and the output topics created.</summary>
    public static MockKafkaCluster Cluster(int inputPartitions)
    {
        var cluster = new MockKafkaCluster();
        cluster.CreateTopics(inputPartitions, Input);
        cluster.CreateTopics(2, Alerts, Quarantine, Pass, DeadLetter);
        return cluster;
    }

    public static Dictionary<string, string?> Settings(MockKafkaCluster cluster, TinyModel model, string group = "gate-test", params (string Key, string Value)[] extra)
    {
        var s = new Dictionary<string, string?>
        {
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers,
            ["Kafka:GroupId"] = group,
            ["Kafka:InputTopics:0"] = Input,
            ["Kafka:PassTopic"] = Pass,
            ["Model:Path"] = model.Path,
            ["Metrics:Port"] = "0",
            ["Metrics:BindAddress"] = "127.0.0.1",
            ["Batching:MaxWaitMs"] = "5",
            ["Delivery:CommitIntervalMs"] = "100",
            ["Delivery:ShutdownTimeoutSeconds"] = "20",
            // The mock coordinator waits about a session timeout for members to rejoin a rebalance.
            ["Kafka:SessionTimeoutMs"] = "3000",
        };
        foreach (var (k, v) in extra) s[k] = v;
        return s;
    }

    public static WebApplication Start(IDictionary<string, string?> settings)
    {
        var app = WorkerHost.Build([], settings, l => l.SetMinimumLevel(LogLevel.Warning));
        app.StartAsync().GetAwaiter().GetResult();
        return app;
    }

    public static string MetricsUrl(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

    public static IProducer<byte[], byte[]> Producer(MockKafkaCluster cluster) =>
        new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, EnableIdempotence = true, Acks = Acks.All }).Build();

    public static void ProducePng(IProducer<byte[], byte[]> producer, string key, ImageSet images, int index, int? partition = null)
    {
        var png = ImageCodec.EncodePng(new DecodedImage(images.Width, images.Height, images.Channels, images.Image(index).ToArray()));
        var message = new Message<byte[], byte[]> { Key = System.Text.Encoding.UTF8.GetBytes(key), Value = png, Headers = new Headers { { "content-type", "image/png"u8.ToArray() } } };
        if (partition is { } p) producer.Produce(new TopicPartition(Input, p), message);
        else producer.Produce(Input, message);
    }

    public static string? LastReadError { get; private set; }

    /// <summary>Reads the given topics from the beginning until <paramref name="until"/> holds or the timeout passes.</summary>
    public static List<OutputRecord> ReadUntil(MockKafkaCluster cluster, string[] topics, Func<List<OutputRecord>, bool> until, TimeSpan timeout)
    {
        // Assigned, not subscribed: no group, no rebalance delay, every partition from its start.
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = "reader-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted,
        }).Build();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build())
        {
            var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
            consumer.Assign(metadata.Topics.Where(t => topics.Contains(t.Topic))
                .SelectMany(t => t.Partitions.Select(p => new TopicPartitionOffset(t.Topic, p.PartitionId, Offset.Beginning))));
        }
        var records = new List<OutputRecord>();
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !until(records))
        {
            ConsumeResult<byte[], byte[]>? r;
            try
            {
                r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            }
            catch (ConsumeException ex)
            {
                LastReadError = ex.Error.Reason;
                continue;
            }
            if (r?.Message is null) continue;
            records.Add(new OutputRecord(r.Topic, r.Message.Key is null ? null : System.Text.Encoding.UTF8.GetString(r.Message.Key), r.Message.Value,
                (r.Message.Headers ?? []).GroupBy(h => h.Key).ToDictionary(g => g.Key, g => System.Text.Encoding.UTF8.GetString(g.Last().GetValueBytes() ?? [])),
                r.Message.Timestamp.UtcDateTime));
        }
        consumer.Close();
        return records;
    }

    /// <summary>Committed offsets of a group for the input topic's partitions.</summary>
    public static Dictionary<int, long> Committed(MockKafkaCluster cluster, string group, int partitions)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = group, EnableAutoCommit = false }).Build();
        var committed = consumer.Committed(Enumerable.Range(0, partitions).Select(p => new TopicPartition(Input, p)), TimeSpan.FromSeconds(10));
        return committed.ToDictionary(c => c.Partition.Value, c => c.Offset.Value);
    }

    /// <summary>
    /// How many input messages a new member of the group would read again. (The mock cluster keeps
    /// transactional offset commits but does not report them through OffsetFetch, so this reads.)
    /// </summary>
    public static int ReReadCount(MockKafkaCluster cluster, string group, TimeSpan wait)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers, GroupId = group, EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest, SessionTimeoutMs = 3000, HeartbeatIntervalMs = 500,
        }).Build();
        consumer.Subscribe(Input);
        var count = 0;
        var deadline = DateTime.UtcNow + wait;
        while (DateTime.UtcNow < deadline)
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { Message: not null }) count++;
        consumer.Close();
        return count;
    }

    public static Dictionary<int, long> EndOffsets(MockKafkaCluster cluster, int partitions)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = "probe-" + Guid.NewGuid().ToString("N") }).Build();
        return Enumerable.Range(0, partitions).ToDictionary(p => p, p => consumer.QueryWatermarkOffsets(new TopicPartition(Input, p), TimeSpan.FromSeconds(10)).High.Value);
    }
}
