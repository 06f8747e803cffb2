using Confluent.Kafka;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DlsganOod.Worker;

/// <summary>
/// Follows the model control topic. At start it reads every event and serves the latest promoted version of
/// Model:Name before the gate consumes anything; afterwards each promotion is loaded and checked in the
/// background and swapped in between two batches; a shadow candidate is loaded beside the served model.
/// </summary>
public sealed partial class ModelControlListener : BackgroundService
{
    private readonly GateOptions options;
    private readonly ModelProvider models;
    private readonly ILogger<ModelControlListener> log;
    private IConsumer<byte[], byte[]>? consumer;

    public ModelControlListener(IOptions<GateOptions> options, ModelProvider models, ILogger<ModelControlListener> log)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options.Value;
        this.models = models;
        this.log = log;
    }

    /// <summary>When the last control event for this model arrived (UTC).</summary>
    public DateTimeOffset? LastEventReceivedAt { get; private set; }

    private bool Enabled => !string.IsNullOrWhiteSpace(options.Model.ControlTopic);

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Enabled) return Task.CompletedTask;
        var connection = KafkaGate.SecurityConfig(options.Kafka);
        consumer = ModelControl.Reader(connection);
        try
        {
            var (events, _) = ModelControl.CatchUp(connection, consumer, options.Model.ControlTopic!, TimeSpan.FromSeconds(10));
            foreach (var e in ModelControl.LatestPerVersion(events, options.Model.Name).Values.OrderBy(e => e.At)) Apply(e);
            if (ModelControl.CurrentPromoted(events, options.Model.Name) is { } promoted) Apply(promoted);
        }
        catch (KafkaException ex)
        {
            LogControlUnavailable(log, options.Model.ControlTopic!, ex.Error.Reason);
        }
        return base.StartAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        !Enabled || consumer is null
            ? Task.CompletedTask
            : Task.Factory.StartNew(() => Follow(stoppingToken), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Follow(CancellationToken stoppingToken)
    {
        var c = consumer!;
        if (c.Assignment.Count == 0)
            c.Assign(new TopicPartitionOffset(options.Model.ControlTopic!, 0, Offset.Beginning));
        while (!stoppingToken.IsCancellationRequested)
        {
            ConsumeResult<byte[], byte[]>? r;
            try
            {
                r = c.Consume(TimeSpan.FromMilliseconds(200));
            }
            catch (ConsumeException ex)
            {
                LogControlUnavailable(log, options.Model.ControlTopic!, ex.Error.Reason);
                Thread.Sleep(1000);
                continue;
            }
            if (ModelControl.Parse(r?.Message?.Value) is { } e && e.Name == options.Model.Name)
            {
                LastEventReceivedAt = DateTimeOffset.UtcNow;
                Apply(e);
            }
        }
        c.Close();
    }

    private void Apply(ModelEvent e)
    {
        switch (e.State)
        {
            case ModelEvent.Promoted when models.Current?.Identity.Version != e.Version:
                // Loaded and checked off the inference thread; the swap itself is one reference exchange.
                if (models.TryLoadVersion(e, options.Model.Score) is { } slot)
                {
                    models.Serve(slot);
                    if (models.Shadow?.Identity.Version == e.Version) models.ServeShadow(null);
                }
                break;
            case ModelEvent.Candidate when e.Shadow && models.Shadow?.Identity.Version != e.Version:
                if (models.TryLoadVersion(e, options.Model.Score) is { } shadow) models.ServeShadow(shadow);
                break;
            case ModelEvent.Retired when models.Shadow?.Identity.Version == e.Version:
                models.ServeShadow(null);
                break;
            case ModelEvent.Candidate when !e.Shadow && models.Shadow?.Identity.Version == e.Version:
                models.ServeShadow(null);
                break;
        }
    }

    public override void Dispose()
    {
        consumer?.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model control topic {Topic} unavailable ({Reason}); serving the configured model")]
    private static partial void LogControlUnavailable(ILogger logger, string topic, string reason);
}
