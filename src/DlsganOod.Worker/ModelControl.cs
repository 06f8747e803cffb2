using System.Text;
using Confluent.Kafka;
using DlsganOod.Core;

namespace DlsganOod.Worker;

/// <summary>One announcement on the compacted control topic (key "name/version": the latest state per version stays).</summary>
public sealed record ModelEvent(string Name, string Version, string Uri, string Sha256, double Threshold, string State, bool Shadow, DateTimeOffset At)
{
    public const string Candidate = "candidate";
    public const string Promoted = "promoted";
    public const string Retired = "retired";
}

/// <summary>Reading and writing the model control topic.</summary>
public static class ModelControl
{
    public const string DefaultTopic = "dlsgan-ood.models";

    public static void Announce(ClientConfig connection, string topic, ModelEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig(connection.ToDictionary(kv => kv.Key, kv => kv.Value)) { EnableIdempotence = true, Acks = Acks.All }).Build();
        producer.ProduceAsync(topic, new Message<byte[], byte[]>
        {
            Key = Encoding.UTF8.GetBytes($"{e.Name}/{e.Version}"),
            Value = Encoding.UTF8.GetBytes(Json.Serialize(e, indented: false)),
        }).GetAwaiter().GetResult();
    }

    /// <summary>Every event currently in the topic, in offset order.</summary>
    public static List<ModelEvent> ReadAll(ClientConfig connection, string topic, TimeSpan timeout)
    {
        using var consumer = Reader(connection);
        var (events, _) = CatchUp(connection, consumer, topic, timeout);
        consumer.Close();
        return events;
    }

    public static IConsumer<byte[], byte[]> Reader(ClientConfig connection) =>
        // A copy: ConsumerConfig(ClientConfig) shares the dictionary, and consumer settings would leak into later producers.
        new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig(connection.ToDictionary(kv => kv.Key, kv => kv.Value))
        {
            // Not a shared group: every worker reads every event.
            GroupId = "dlsgan-ood-control-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            FetchWaitMaxMs = 100,
        }).Build();

    /// <summary>Assigns every partition of the topic from the start and reads up to the end it had when called.</summary>
    public static (List<ModelEvent> Events, List<TopicPartition> Partitions) CatchUp(ClientConfig connection, IConsumer<byte[], byte[]> consumer, string topic, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(consumer);
        var events = new List<ModelEvent>();
        using var admin = new AdminClientBuilder(new AdminClientConfig(connection.ToDictionary(kv => kv.Key, kv => kv.Value))).Build();
        var metadata = admin.GetMetadata(topic, timeout).Topics.FirstOrDefault(t => t.Topic == topic);
        if (metadata is null || metadata.Error.IsError || metadata.Partitions.Count == 0) return (events, []);
        var partitions = metadata.Partitions.Select(p => new TopicPartition(topic, p.PartitionId)).ToList();
        var ends = partitions.ToDictionary(tp => tp, tp => consumer.QueryWatermarkOffsets(tp, timeout).High.Value);
        consumer.Assign(partitions.Select(tp => new TopicPartitionOffset(tp, Offset.Beginning)));
        var next = partitions.ToDictionary(tp => tp, _ => 0L);
        var deadline = DateTime.UtcNow + timeout;
        while (partitions.Any(tp => next[tp] < ends[tp]) && DateTime.UtcNow < deadline)
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (r?.Message is null) continue;
            next[r.TopicPartition] = r.Offset.Value + 1;
            if (Parse(r.Message.Value) is { } e) events.Add(e);
        }
        return (events, partitions);
    }

    public static ModelEvent? Parse(byte[]? value)
    {
        if (value is null || value.Length == 0) return null;
        try
        {
            return Json.Deserialize<ModelEvent>(Encoding.UTF8.GetString(value));
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>The latest state of each version (the last event per key), as compaction will keep it.</summary>
    public static Dictionary<string, ModelEvent> LatestPerVersion(IEnumerable<ModelEvent> events, string name) =>
        events.Where(e => e.Name == name).GroupBy(e => e.Version).ToDictionary(g => g.Key, g => g.Last());

    /// <summary>The version to serve: the promoted one promoted last.</summary>
    public static ModelEvent? CurrentPromoted(IEnumerable<ModelEvent> events, string name) =>
        LatestPerVersion(events, name).Values.Where(e => e.State == ModelEvent.Promoted).MaxBy(e => e.At);
}
