using System.CommandLine;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using DlsganOod.Core;
using DlsganOod.Core.Data;
using DlsganOod.Core.Imaging;
using DlsganOod.Worker;
using Spectre.Console;

namespace DlsganOod.Cli;

internal static class StreamCommands
{
    public static Command Worker()
    {
        var command = new Command("worker", "Run the streaming OOD gate against the Kafka named in configuration (appsettings.json, DLSGANOOD_* variables, --Section:Key=value)");
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var app = WorkerHost.Build(parse.UnmatchedTokens.ToArray());
                await app.RunAsync().ConfigureAwait(false);
                var failure = app.Services.GetService(typeof(GateWorker)) is GateWorker w ? w.Failure : null;
                return failure is null ? 0 : 1;
            }
            catch (GateConfigurationException ex)
            {
                Console.Error.WriteLine(ex.Message);
                return 2;
            }
            catch (Exception ex) when (ex is Core.Model.CheckpointException or FileNotFoundException)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 1;
            }
        });
        return command;
    }

    private static readonly Option<string?> Bootstrap = new("--bootstrap-servers") { Description = "Kafka bootstrap servers (default: Kafka:BootstrapServers from configuration)" };

    private static string ResolveBootstrap(ParseResult parse) =>
        parse.GetValue(Bootstrap) ?? WorkerHost.BuildConfiguration([])["Kafka:BootstrapServers"] ?? "localhost:9092";

    public static Command Produce()
    {
        var topic = new Option<string>("--topic") { Description = "Topic to send to", DefaultValueFactory = _ => "images" };
        var input = new Option<string>("--input") { Description = "IDX file, PNG/JPEG file or folder", Required = true };
        var raw = new Option<bool>("--raw") { Description = "Send raw 8-bit pixels with content-type image/x-raw;width=W;height=H;channels=C instead of PNG" };
        var keyPrefix = new Option<string>("--key-prefix") { Description = "Message key = prefix + image id", DefaultValueFactory = _ => "" };
        var command = new Command("produce", "Send images to a Kafka topic, one message each") { topic, input, raw, keyPrefix, Bootstrap };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var images = ImageSources.Open(parse.GetValue(input)!);
            using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = ResolveBootstrap(parse), EnableIdempotence = true, Acks = Acks.All }).Build();
            var sent = ProduceImages(producer, parse.GetValue(topic)!, images, parse.GetValue(keyPrefix)!, parse.GetValue(raw));
            Console.WriteLine($"sent {sent} messages to {parse.GetValue(topic)}");
            return 0;
        }));
        return command;
    }

    public static int ProduceImages(IProducer<byte[], byte[]> producer, string topic, ImageSet images, string keyPrefix, bool raw, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(producer);
        ArgumentNullException.ThrowIfNull(images);
        var failures = 0;
        for (var i = 0; i < images.Count; i++)
        {
            var pixels = images.Image(i).ToArray();
            var image = new DecodedImage(images.Width, images.Height, images.Channels, pixels);
            var message = new Message<byte[], byte[]>
            {
                Key = Encoding.UTF8.GetBytes(keyPrefix + images.IdOf(i)),
                Value = raw ? pixels : ImageCodec.EncodePng(image),
                Headers = new Headers { { MessageDecoder.ContentTypeHeader, Encoding.UTF8.GetBytes(raw ? MessageDecoder.RawContentType(images.Width, images.Height, images.Channels) : "image/png") } },
            };
            while (true)
            {
                try
                {
                    producer.Produce(topic, message, r => { if (r.Error.IsError) Interlocked.Increment(ref failures); });
                    break;
                }
                catch (ProduceException<byte[], byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(50));
                }
            }
            progress?.Invoke(i + 1);
        }
        producer.Flush(TimeSpan.FromSeconds(60));
        if (failures > 0) throw new InvalidDataException($"{failures} messages could not be delivered to {topic}");
        return images.Count;
    }

    public static Command Alerts()
    {
        var follow = new Option<bool>("--follow") { Description = "Keep reading new alerts until Ctrl-C (else stop when caught up)" };
        var topic = new Option<string?>("--topic") { Description = "Alert topic (default: Kafka:AlertTopic)" };
        var fromStart = new Option<bool>("--from-beginning") { Description = "Start from the oldest alert instead of new ones" };
        var export = new Option<string?>("--export") { Description = "Also write each flagged image (from the quarantine topic) to this folder" };
        var command = new Command("alerts", "Readable live view of the alert topic, for monitoring teams") { follow, topic, fromStart, export, Bootstrap };
        command.SetAction((parse, cancellationToken) => Task.FromResult(CliSupport.Run(() =>
        {
            var config = WorkerHost.BuildConfiguration([]);
            var alertTopic = parse.GetValue(topic) ?? config["Kafka:AlertTopic"] ?? "dlsgan-ood.alerts";
            var quarantine = config["Kafka:QuarantineTopic"] ?? "dlsgan-ood.quarantine";
            var exportDir = parse.GetValue(export);
            if (exportDir is not null) Directory.CreateDirectory(exportDir);
            using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
            {
                BootstrapServers = ResolveBootstrap(parse),
                GroupId = "dlsgan-ood-alerts-viewer-" + Guid.NewGuid().ToString("N")[..8],
                AutoOffsetReset = parse.GetValue(fromStart) ? AutoOffsetReset.Earliest : AutoOffsetReset.Latest,
                EnableAutoCommit = false,
                IsolationLevel = IsolationLevel.ReadCommitted,
            }).Build();
            consumer.Subscribe(exportDir is null ? [alertTopic] : [alertTopic, quarantine]);
            var idle = 0;
            var shown = 0;
            while (!cancellationToken.IsCancellationRequested)
            {
                ConsumeResult<byte[], byte[]>? r;
                try
                {
                    r = consumer.Consume(TimeSpan.FromMilliseconds(500));
                }
                catch (ConsumeException ex)
                {
                    Console.Error.WriteLine($"waiting: {ex.Error.Reason}");
                    Thread.Sleep(1000);
                    continue;
                }
                if (r?.Message is null)
                {
                    if (!parse.GetValue(follow) && ++idle >= 6) break;
                    continue;
                }
                idle = 0;
                if (r.Topic == quarantine && exportDir is not null)
                {
                    ExportImage(exportDir, r.Message);
                    continue;
                }
                try
                {
                    var alert = System.Text.Json.JsonSerializer.Deserialize<AlertEvent>(r.Message.Value, Json.Options)!;
                    AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                        $"[grey]{alert.DecidedAt:HH:mm:ss.fff}[/] [bold]{Markup.Escape(alert.Id)}[/] {Markup.Escape(alert.Source.Topic)}/{alert.Source.Partition}@{alert.Source.Offset} log-likelihood [red]{alert.LogLikelihood:F1}[/] < {alert.Threshold:F1}  model {Markup.Escape(alert.Model.Name)}:{Markup.Escape(alert.Model.Version)}"));
                    shown++;
                }
                catch (System.Text.Json.JsonException ex)
                {
                    Console.Error.WriteLine($"unreadable alert at {r.TopicPartitionOffset}: {ex.Message}");
                }
            }
            consumer.Close();
            Console.Error.WriteLine($"{shown} alerts shown");
            return 0;
        })));
        return command;
    }

    private static void ExportImage(string dir, Message<byte[], byte[]> message)
    {
        var key = message.Key is null ? Guid.NewGuid().ToString("N") : Encoding.UTF8.GetString(message.Key);
        var safe = string.Concat(key.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        var contentType = message.Headers?.TryGetLastBytes(MessageDecoder.ContentTypeHeader, out var ct) == true ? Encoding.UTF8.GetString(ct) : "";
        try
        {
            var image = MessageDecoder.Decode(new InputMessage(new TopicPartitionOffset("export", 0, 0), message.Key, message.Value, message.Headers ?? [], message.Timestamp, 0), DecodeLimits.Default);
            File.WriteAllBytes(Path.Combine(dir, safe + ".png"), ImageCodec.EncodePng(image));
        }
        catch (ImageDecodeException)
        {
            File.WriteAllBytes(Path.Combine(dir, safe + (contentType.Contains("jpeg", StringComparison.OrdinalIgnoreCase) ? ".jpg" : ".bin")), message.Value);
        }
    }
}
