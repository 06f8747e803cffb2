using System.Text.RegularExpressions;

namespace DlsganOod.Worker;

/// <summary>Section "Kafka". Delivery guarantees (acks, idempotence, offset storage) are fixed in code, not here.</summary>
public sealed class KafkaOptions
{
    public const string Section = "Kafka";
    public string BootstrapServers { get; set; } = "";
    public string GroupId { get; set; } = "dlsgan-ood";
    /// <summary>Topic names; an entry starting with '^' is a regular expression (librdkafka subscription syntax).</summary>
    public List<string> InputTopics { get; set; } = ["images"];
    public string AlertTopic { get; set; } = "dlsgan-ood.alerts";
    public string QuarantineTopic { get; set; } = "dlsgan-ood.quarantine";
    /// <summary>Optional: in-distribution inputs are copied here so pipelines can route on the verdict alone.</summary>
    public string? PassTopic { get; set; }
    public string DeadLetterTopic { get; set; } = "dlsgan-ood.dead-letter";
    /// <summary>PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.</summary>
    public string SecurityProtocol { get; set; } = "PLAINTEXT";
    /// <summary>PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL only).</summary>
    public string? SaslMechanism { get; set; }
    public string? SaslUsername { get; set; }
    public string? SaslPassword { get; set; }
    public string? SslCaLocation { get; set; }
    /// <summary>
    /// Group session timeout. Shorter than Kafka's 45 s default so a crashed worker's partitions move
    /// quickly; heartbeats are sent every third of it.
    /// </summary>
    public int SessionTimeoutMs { get; set; } = 10_000;
    /// <summary>Unique per worker instance in ExactlyOnce mode; default: group id + machine name + process id.</summary>
    public string? TransactionalIdPrefix { get; set; }
}

/// <summary>Section "Model".</summary>
public sealed class ModelOptions
{
    public const string Section = "Model";
    /// <summary>Checkpoint folder; empty = the committed default model.</summary>
    public string? Path { get; set; }
    /// <summary>
    /// The OOD score the gate decides on (log_likelihood = the paper's; mahalanobis, fused, ... need
    /// `calibrate --score`). Its threshold always comes from the same checkpoint.
    /// </summary>
    public string Score { get; set; } = "log_likelihood";
    /// <summary>The model name whose promoted versions this worker serves (control topic events for other names are ignored).</summary>
    public string Name { get; set; } = "default";
    /// <summary>Compacted topic with version announcements; empty disables hot swapping (Model:Path is served).</summary>
    public string? ControlTopic { get; set; } = "dlsgan-ood.models";
}

/// <summary>Section "Batching". Defaults come from `dlsgan-ood bench` (see README).</summary>
public sealed class BatchingOptions
{
    public const string Section = "Batching";
    public int MaxBatchSize { get; set; } = 64;
    public int MaxWaitMs { get; set; } = 10;
    public int ChannelCapacity { get; set; } = 1024;
}

/// <summary>Section "Metrics".</summary>
public sealed class MetricsOptions
{
    public const string Section = "Metrics";
    public int Port { get; set; } = 9464;
    public string BindAddress { get; set; } = "0.0.0.0";
    /// <summary>Messages in the rolling OOD-rate window used by the drift test.</summary>
    public int DriftWindow { get; set; } = 2000;
    /// <summary>Two-sided binomial p-value below which the drift gauge is raised.</summary>
    public double DriftAlpha { get; set; } = 0.001;
}

/// <summary>Section "Limits": checked before any pixel is decoded.</summary>
public sealed class LimitsOptions
{
    public const string Section = "Limits";
    public int MaxMessageBytes { get; set; } = 4 * 1024 * 1024;
    public long MaxPixels { get; set; } = 4096L * 4096;
}

/// <summary>Section "Delivery".</summary>
public sealed class DeliveryOptions
{
    public const string Section = "Delivery";
    /// <summary>Kafka transactions: outputs and consumed offsets commit atomically (no duplicates downstream).</summary>
    public bool ExactlyOnce { get; set; }
    public int ShutdownTimeoutSeconds { get; set; } = 30;
    public int CommitIntervalMs { get; set; } = 1000;
}

/// <summary>All settings of one worker, validated together at start.</summary>
public sealed class GateOptions
{
    public KafkaOptions Kafka { get; set; } = new();
    public ModelOptions Model { get; set; } = new();
    public BatchingOptions Batching { get; set; } = new();
    public MetricsOptions Metrics { get; set; } = new();
    public LimitsOptions Limits { get; set; } = new();
    public DeliveryOptions Delivery { get; set; } = new();

    /// <summary>Every problem, each naming its setting as Section:Key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        void Check(bool ok, string setting, string message)
        {
            if (!ok) errors.Add($"{setting}: {message}");
        }
        static bool IsTopic(string? t) => !string.IsNullOrWhiteSpace(t) && t.Length <= 249 && Regex.IsMatch(t, "^[A-Za-z0-9._-]+$");

        Check(!string.IsNullOrWhiteSpace(Kafka.BootstrapServers), "Kafka:BootstrapServers", "is required (host:port[,host:port])");
        Check(Kafka.BootstrapServers.Split(',', StringSplitOptions.RemoveEmptyEntries).All(s => s.Contains(':', StringComparison.Ordinal)) || string.IsNullOrWhiteSpace(Kafka.BootstrapServers),
            "Kafka:BootstrapServers", $"'{Kafka.BootstrapServers}' must be host:port entries separated by commas");
        Check(!string.IsNullOrWhiteSpace(Kafka.GroupId), "Kafka:GroupId", "is required");
        Check(Kafka.InputTopics.Count > 0, "Kafka:InputTopics", "needs at least one topic or ^regex");
        for (var i = 0; i < Kafka.InputTopics.Count; i++)
        {
            var t = Kafka.InputTopics[i];
            if (t.StartsWith('^'))
            {
                try { _ = new Regex(t); }
                catch (ArgumentException ex) { errors.Add($"Kafka:InputTopics:{i}: invalid regular expression '{t}' ({ex.Message})"); }
            }
            else Check(IsTopic(t), $"Kafka:InputTopics:{i}", $"'{t}' is not a valid topic name");
        }
        Check(IsTopic(Kafka.AlertTopic), "Kafka:AlertTopic", $"'{Kafka.AlertTopic}' is not a valid topic name");
        Check(IsTopic(Kafka.QuarantineTopic), "Kafka:QuarantineTopic", $"'{Kafka.QuarantineTopic}' is not a valid topic name");
        Check(Kafka.PassTopic is null || Kafka.PassTopic.Length == 0 || IsTopic(Kafka.PassTopic), "Kafka:PassTopic", $"'{Kafka.PassTopic}' is not a valid topic name");
        Check(IsTopic(Kafka.DeadLetterTopic), "Kafka:DeadLetterTopic", $"'{Kafka.DeadLetterTopic}' is not a valid topic name");
        var outputs = new[] { Kafka.AlertTopic, Kafka.QuarantineTopic, Kafka.PassTopic, Kafka.DeadLetterTopic }.Where(t => !string.IsNullOrEmpty(t)).ToArray();
        Check(outputs.Distinct(StringComparer.Ordinal).Count() == outputs.Length, "Kafka:AlertTopic", "the alert, quarantine, pass and dead-letter topics must differ");
        Check(!Kafka.InputTopics.Intersect(outputs, StringComparer.Ordinal).Any(), "Kafka:InputTopics", "an output topic is also an input topic (the gate would consume its own output)");
        Check(Kafka.SessionTimeoutMs is >= 1000 and <= 300_000, "Kafka:SessionTimeoutMs", $"must lie in [1000, 300000], not {Kafka.SessionTimeoutMs}");
        Check(Kafka.SecurityProtocol is "PLAINTEXT" or "SSL" or "SASL_PLAINTEXT" or "SASL_SSL", "Kafka:SecurityProtocol", $"'{Kafka.SecurityProtocol}' must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL");
        if (Kafka.SecurityProtocol.StartsWith("SASL", StringComparison.Ordinal))
        {
            Check(Kafka.SaslMechanism is "PLAIN" or "SCRAM-SHA-256" or "SCRAM-SHA-512", "Kafka:SaslMechanism", $"'{Kafka.SaslMechanism}' must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
            Check(!string.IsNullOrEmpty(Kafka.SaslUsername), "Kafka:SaslUsername", "is required with SASL");
            Check(!string.IsNullOrEmpty(Kafka.SaslPassword), "Kafka:SaslPassword", "is required with SASL");
        }
        Check(Kafka.SslCaLocation is null || Kafka.SslCaLocation.Length == 0 || File.Exists(Kafka.SslCaLocation), "Kafka:SslCaLocation", $"file '{Kafka.SslCaLocation}' not found");
        Check(Batching.MaxBatchSize is >= 1 and <= 4096, "Batching:MaxBatchSize", $"must lie in [1, 4096], not {Batching.MaxBatchSize}");
        Check(Batching.MaxWaitMs is >= 0 and <= 60_000, "Batching:MaxWaitMs", $"must lie in [0, 60000], not {Batching.MaxWaitMs}");
        Check(Batching.ChannelCapacity >= Batching.MaxBatchSize, "Batching:ChannelCapacity", $"must be at least MaxBatchSize ({Batching.MaxBatchSize}), not {Batching.ChannelCapacity}");
        Check(Metrics.Port is >= 0 and <= 65535, "Metrics:Port", $"must lie in [0, 65535], not {Metrics.Port}");
        Check(System.Net.IPAddress.TryParse(Metrics.BindAddress, out _) || Metrics.BindAddress is "localhost" or "*", "Metrics:BindAddress", $"'{Metrics.BindAddress}' is not an IP address");
        Check(Metrics.DriftWindow >= 50, "Metrics:DriftWindow", $"must be at least 50, not {Metrics.DriftWindow}");
        Check(Metrics.DriftAlpha is > 0 and < 1, "Metrics:DriftAlpha", $"must lie in (0, 1), not {Metrics.DriftAlpha}");
        Check(Limits.MaxMessageBytes >= 64, "Limits:MaxMessageBytes", $"must be at least 64, not {Limits.MaxMessageBytes}");
        Check(Limits.MaxPixels >= 1, "Limits:MaxPixels", $"must be positive, not {Limits.MaxPixels}");
        Check(Delivery.ShutdownTimeoutSeconds is >= 1 and <= 3600, "Delivery:ShutdownTimeoutSeconds", $"must lie in [1, 3600], not {Delivery.ShutdownTimeoutSeconds}");
        Check(Delivery.CommitIntervalMs is >= 10 and <= 60_000, "Delivery:CommitIntervalMs", $"must lie in [10, 60000], not {Delivery.CommitIntervalMs}");
        Check(DlsganOod.Core.Scoring.OodScoreModel.Names.Contains(Model.Score), "Model:Score", $"'{Model.Score}' is not one of {string.Join(", ", DlsganOod.Core.Scoring.OodScoreModel.Names)}");
        Check(Model.Path is null || Model.Path.Length == 0 || Directory.Exists(Model.Path), "Model:Path", $"folder '{Model.Path}' not found");
        return errors;
    }
}

/// <summary>Raised at start when configuration is invalid; the message lists every bad setting by name.</summary>
public sealed class GateConfigurationException : Exception
{
    public GateConfigurationException(IReadOnlyList<string> errors) : base("Invalid configuration:\n  " + string.Join("\n  ", errors)) => Errors = errors;
    public GateConfigurationException() : this([]) { }
    public GateConfigurationException(string message) : base(message) => Errors = [message];
    public GateConfigurationException(string message, Exception inner) : base(message, inner) => Errors = [message];
    public IReadOnlyList<string> Errors { get; } = [];
}
