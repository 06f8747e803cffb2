using System.Globalization;
using System.Text;
using Confluent.Kafka;
using DlsganOod.Core;

namespace DlsganOod.Worker;

public sealed record AlertSource(string Topic, int Partition, long Offset, DateTimeOffset? Timestamp);

public sealed record AlertEvidence(int Dimension, float Z, double Deviation);

/// <summary>The JSON event published on the alert topic for every OOD input.</summary>
/// <param name="LogLikelihood">The paper's latent log-likelihood, always reported.</param>
/// <param name="Threshold">The threshold of the score the gate decides on (<paramref name="Score"/>).</param>
public sealed record AlertEvent(
    string Id, AlertSource Source, double LogLikelihood, double Threshold, ModelIdentity Model, DateTimeOffset DecidedAt, IReadOnlyList<AlertEvidence> Evidence,
    string Score = "log_likelihood", double ScoreValue = double.NaN);

/// <summary>Headers and payloads of the gate's output records; the names are part of its contract.</summary>
public static class OutputRecords
{
    public const string VerdictHeader = "dlsgan-ood.verdict";
    public const string LogLikelihoodHeader = "dlsgan-ood.log-likelihood";
    public const string ThresholdHeader = "dlsgan-ood.threshold";
    public const string ScoreHeader = "dlsgan-ood.score";
    public const string ScoreValueHeader = "dlsgan-ood.score-value";
    public const string ModelVersionHeader = "dlsgan-ood.model-version";
    public const string ModelNameHeader = "dlsgan-ood.model-name";
    public const string SourceHeader = "dlsgan-ood.source";
    public const string SourceTimestampHeader = "dlsgan-ood.source-timestamp-ms";
    public const string DecidedAtHeader = "dlsgan-ood.decided-at";
    public const string ErrorCodeHeader = "error.code";
    public const string ErrorMessageHeader = "error.message";
    public const string SourceTopicHeader = "source.topic";
    public const string SourcePartitionHeader = "source.partition";
    public const string SourceOffsetHeader = "source.offset";

    public static AlertEvent Alert(Verdict v)
    {
        ArgumentNullException.ThrowIfNull(v);
        var m = v.Message;
        return new AlertEvent(m.Id,
            new AlertSource(m.Source.Topic, m.Source.Partition.Value, m.Source.Offset.Value, m.Timestamp.Type == TimestampType.NotAvailable ? null : m.Timestamp.UtcDateTime),
            v.LogLikelihood, v.Threshold, v.Model!, v.DecidedAt,
            (v.Evidence ?? []).Select(e => new AlertEvidence(e.Dimension, e.Value, Math.Round(e.Deviation, 4))).ToArray(),
            v.ScoreName, double.IsNaN(v.ScoreValue) ? v.LogLikelihood : v.ScoreValue);
    }

    public static Message<byte[], byte[]> AlertRecord(Verdict v) => new()
    {
        Key = v.Message.Key ?? Encoding.UTF8.GetBytes(v.Message.Id),
        Value = Encoding.UTF8.GetBytes(Json.Serialize(Alert(v), indented: false)),
        Headers = new Headers { { "content-type", "application/json"u8.ToArray() } },
    };

    /// <summary>The original message (key, value, headers) plus the verdict headers.</summary>
    public static Message<byte[], byte[]> CopyWithVerdict(Verdict v)
    {
        ArgumentNullException.ThrowIfNull(v);
        var m = v.Message;
        var headers = new Headers();
        foreach (var h in m.Headers) headers.Add(h.Key, h.GetValueBytes());
        void Add(string k, string value) => headers.Add(k, Encoding.UTF8.GetBytes(value));
        Add(VerdictHeader, v.Kind switch { VerdictKind.Ood => "ood", VerdictKind.Pass => "pass", _ => "dead-letter" });
        Add(SourceHeader, $"{m.Source.Topic}/{m.Source.Partition.Value}/{m.Source.Offset.Value}");
        if (m.Timestamp.Type != TimestampType.NotAvailable)
            Add(SourceTimestampHeader, m.Timestamp.UnixTimestampMs.ToString(CultureInfo.InvariantCulture));
        Add(DecidedAtHeader, v.DecidedAt.ToString("O", CultureInfo.InvariantCulture));
        if (v.Model is { } model)
        {
            Add(ModelNameHeader, model.Name);
            Add(ModelVersionHeader, model.Version);
        }
        if (v.Kind == VerdictKind.DeadLetter)
        {
            Add(ErrorCodeHeader, v.ErrorCode ?? "unknown");
            Add(ErrorMessageHeader, v.ErrorMessage ?? "");
            Add(SourceTopicHeader, m.Source.Topic);
            Add(SourcePartitionHeader, m.Source.Partition.Value.ToString(CultureInfo.InvariantCulture));
            Add(SourceOffsetHeader, m.Source.Offset.Value.ToString(CultureInfo.InvariantCulture));
        }
        else
        {
            Add(LogLikelihoodHeader, v.LogLikelihood.ToString("R", CultureInfo.InvariantCulture));
            Add(ThresholdHeader, v.Threshold.ToString("R", CultureInfo.InvariantCulture));
            Add(ScoreHeader, v.ScoreName);
            Add(ScoreValueHeader, (double.IsNaN(v.ScoreValue) ? v.LogLikelihood : v.ScoreValue).ToString("R", CultureInfo.InvariantCulture));
        }
        return new Message<byte[], byte[]> { Key = m.Key!, Value = m.Value!, Headers = headers, Timestamp = Timestamp.Default };
    }

    /// <summary>(topic, record) pairs for a verdict: alert + quarantine for OOD, pass copy, or dead-letter.</summary>
    public static IEnumerable<(string Topic, Message<byte[], byte[]> Record)> For(Verdict v, KafkaOptions topics)
    {
        ArgumentNullException.ThrowIfNull(v);
        ArgumentNullException.ThrowIfNull(topics);
        switch (v.Kind)
        {
            case VerdictKind.Ood:
                yield return (topics.AlertTopic, AlertRecord(v));
                yield return (topics.QuarantineTopic, CopyWithVerdict(v));
                break;
            case VerdictKind.Pass:
                if (!string.IsNullOrEmpty(topics.PassTopic)) yield return (topics.PassTopic, CopyWithVerdict(v));
                break;
            default:
                yield return (topics.DeadLetterTopic, CopyWithVerdict(v));
                break;
        }
    }
}
