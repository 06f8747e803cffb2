using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using DlsganOod.Core.Corruptions;
using DlsganOod.Core.Data;
using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;
using DlsganOod.Worker;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace DlsganOod.Cli;

/// <summary>
/// The embedded end-to-end run: librdkafka's mock cluster in-process, the gate with the default model, a
/// producer streaming the clean test digits and the same digits under each MNIST-C corruption, and readers
/// of the verdict and alert topics. Nothing to install, no broker, no data to prepare.
/// </summary>
internal static class DemoCommand
{
    private const string Input = "images";
    private const string AlertTopic = "dlsgan-ood.alerts";
    private const string Quarantine = "dlsgan-ood.quarantine";
    private const string Pass = "dlsgan-ood.pass";
    private const string DeadLetter = "dlsgan-ood.dead-letter";

    public static Command Create()
    {
        var limit = new Option<int>("--limit") { Description = "Test digits per set (max 2000)", DefaultValueFactory = _ => 2000 };
        var corruptions = new Option<string[]>("--corruption") { Description = "Corruptions to stream (default: all 15)", AllowMultipleArgumentsPerToken = true };
        var rate = new Option<int>("--rate") { Description = "Messages per second (0 = as fast as the producer can)", DefaultValueFactory = _ => 0 };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for every verdict", DefaultValueFactory = _ => 900 };
        var command = new Command("demo", "Run the whole gate on an embedded Kafka (mock cluster) with the default model and print detection, throughput and latency")
        {
            ModelCommands.ModelOption, limit, corruptions, rate, timeout, Score, DataCommand.CacheOption,
        };
        command.SetAction((parse, cancellationToken) => Task.FromResult(CliSupport.Run(() => Run(parse, limit, corruptions, rate, timeout, cancellationToken))));
        return command;
    }

    private static readonly Option<string> Score = new("--score")
    {
        Description = "Score the gate decides on: auto (encoder_features when the model is calibrated for it, else the paper's log_likelihood), or any calibrated score",
        DefaultValueFactory = _ => "auto",
    };

    private sealed record Received(string Set, string Verdict, double LatencyMs);

    private static int Run(ParseResult parse, Option<int> limitOption, Option<string[]> corruptionOption, Option<int> rateOption, Option<int> timeoutOption, CancellationToken cancellationToken)
    {
        var modelPath = ModelLocator.Resolve(parse.GetValue(ModelCommands.ModelOption));
        var names = parse.GetValue(corruptionOption) is { Length: > 0 } chosen ? chosen : MnistC.Names;
        var unknown = names.Except(MnistC.Names).ToArray();
        if (unknown.Length > 0) throw new ArgumentException($"--corruption: unknown {string.Join(", ", unknown)}");
        var limit = Math.Clamp(parse.GetValue(limitOption), 1, NpmMnist.TestPerDigit * 10);

        AnsiConsole.MarkupLine("[bold]dlsgan-ood demo[/]: mock Kafka cluster + gate + producer + alert reader, all in this process");
        var test = DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption)).Test;
        // Every 2000/limit-th digit keeps all ten classes in a shortened run.
        test = test.Select(Enumerable.Range(0, limit).Select(i => (int)((long)i * test.Count / limit)).ToArray());
        var sets = new List<(string Name, ImageSet Images)> { ("clean", test) };
        AnsiConsole.Status().Start($"Corrupting {test.Count} test digits {names.Length} ways…", _ =>
        {
            foreach (var name in names) sets.Add((name, MnistC.Apply(name, test, seed: 0)));
        });
        var total = sets.Sum(s => s.Images.Count);

        using var cluster = new MockKafkaCluster();
        cluster.CreateTopics(4, Input);
        cluster.CreateTopics(2, AlertTopic, Quarantine, Pass, DeadLetter);
        var settings = new Dictionary<string, string?>
        {
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers,
            ["Kafka:GroupId"] = "dlsgan-ood-demo",
            ["Kafka:InputTopics:0"] = Input,
            ["Kafka:AlertTopic"] = AlertTopic,
            ["Kafka:QuarantineTopic"] = Quarantine,
            ["Kafka:PassTopic"] = Pass,
            ["Kafka:DeadLetterTopic"] = DeadLetter,
            ["Model:Path"] = modelPath,
            ["Model:Score"] = ResolveScore(parse.GetValue(Score)!, modelPath),
            ["Metrics:Port"] = "0",
            ["Metrics:BindAddress"] = "127.0.0.1",
            // Only problems on the console: the progress display and the report are the output here.
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
        };
        var app = WorkerHost.Build([], settings, l => l.SetMinimumLevel(LogLevel.Warning));
        var slot = ((ModelProvider)app.Services.GetService(typeof(ModelProvider))!).Current!;
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"Kafka (mock) at [blue]{cluster.BootstrapServers}[/]; model [blue]{Markup.Escape(slot.Identity.Name)}[/] {slot.Identity.Version}, score {slot.Score}, threshold {slot.Threshold:G5} (calibrated FPR {slot.CalibratedFpr:P1})"));
        app.StartAsync(cancellationToken).GetAwaiter().GetResult();

        var received = new ConcurrentDictionary<string, Received>();
        var alerts = new ConcurrentDictionary<string, int>();
        using var stopReaders = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var reader = Task.Factory.StartNew(() => ReadOutputs(cluster.BootstrapServers, received, alerts, stopReaders.Token), TaskCreationOptions.LongRunning);

        var clock = Stopwatch.StartNew();
        var produced = 0;
        var rate = parse.GetValue(rateOption);
        var producer = Task.Factory.StartNew(() =>
        {
            using var p = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, EnableIdempotence = true, Acks = Acks.All, LingerMs = 5 }).Build();
            var sent = 0;
            foreach (var (name, images) in sets)
            {
                if (stopReaders.IsCancellationRequested) break;
                var keyed = new ImageSet(images.Count, images.Height, images.Width, images.Channels, images.Pixels, images.Labels,
                    Enumerable.Range(0, images.Count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray());
                StreamCommands.ProduceImages(p, Input, keyed, name + "/", raw: false, n =>
                {
                    Volatile.Write(ref produced, sent + n);
                    if (rate > 0)
                    {
                        var due = TimeSpan.FromSeconds((sent + n) / (double)rate);
                        if (due > clock.Elapsed) Thread.Sleep(due - clock.Elapsed);
                    }
                });
                sent += images.Count;
            }
        }, TaskCreationOptions.LongRunning);

        var deadline = TimeSpan.FromSeconds(parse.GetValue(timeoutOption));
        void Wait(Action<int, int> update)
        {
            while (received.Count < total && clock.Elapsed < deadline && !cancellationToken.IsCancellationRequested && !producer.IsFaulted)
            {
                update(Volatile.Read(ref produced), received.Count);
                Thread.Sleep(250);
            }
            update(Volatile.Read(ref produced), received.Count);
        }
        if (CliSupport.Interactive)
        {
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn()).Start(ctx =>
            {
                var p = ctx.AddTask("produced", maxValue: total);
                var v = ctx.AddTask("verdicts", maxValue: total);
                Wait((a, b) => { p.Value = a; v.Value = b; v.Description = $"verdicts ({alerts.Values.Sum()} alerts)"; });
            });
        }
        else
        {
            var last = TimeSpan.Zero;
            Wait((a, b) =>
            {
                if (clock.Elapsed - last < TimeSpan.FromSeconds(5) && b < total) return;
                last = clock.Elapsed;
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed:mm\\:ss} produced {a}/{total}, verdicts {b}/{total}, alerts {alerts.Values.Sum()}"));
            });
        }
        var elapsed = clock.Elapsed;
        // Alerts are published with the quarantine copy; give the alert reader a moment to catch up.
        var alertDeadline = DateTime.UtcNow.AddSeconds(10);
        while (alerts.Values.Sum() < received.Values.Count(r => r.Verdict == "ood") && DateTime.UtcNow < alertDeadline) Thread.Sleep(100);
        stopReaders.Cancel();
        reader.Wait(TimeSpan.FromSeconds(10), CancellationToken.None);
        app.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
        if (producer.IsFaulted) throw producer.Exception!.InnerException!;

        PrintSummary(sets, received, alerts, total, elapsed, slot);
        var complete = received.Count == total && received.Values.All(r => r.Verdict != "dead-letter");
        if (!complete) AnsiConsole.MarkupLine($"[red]Incomplete: {received.Count}/{total} verdicts[/]");
        return complete ? 0 : 1;
    }

    private static string ResolveScore(string requested, string modelPath)
    {
        if (requested != "auto") return requested;
        var metadata = Checkpoint.ReadMetadata(modelPath);
        return metadata.ScoreCalibrations?.ContainsKey(OodScoreModel.EncoderFeatures) == true ? OodScoreModel.EncoderFeatures : OodScoreModel.LogLikelihood;
    }

    private static void ReadOutputs(string bootstrap, ConcurrentDictionary<string, Received> received, ConcurrentDictionary<string, int> alerts, CancellationToken stop)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "dlsgan-ood-demo-reader",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            FetchWaitMaxMs = 20,
            EnableAutoCommit = false,
        }).Build();
        consumer.Subscribe([Quarantine, Pass, DeadLetter, AlertTopic]);
        while (!stop.IsCancellationRequested)
        {
            ConsumeResult<byte[], byte[]>? r;
            try
            {
                r = consumer.Consume(TimeSpan.FromMilliseconds(100));
            }
            catch (ConsumeException)
            {
                continue;
            }
            if (r?.Message?.Key is null) continue;
            var key = Encoding.UTF8.GetString(r.Message.Key);
            var set = key[..Math.Max(0, key.IndexOf('/', StringComparison.Ordinal))];
            if (r.Topic == AlertTopic)
            {
                alerts.AddOrUpdate(set, 1, (_, n) => n + 1);
                continue;
            }
            var headers = r.Message.Headers;
            var verdict = headers.TryGetLastBytes(OutputRecords.VerdictHeader, out var v) ? Encoding.UTF8.GetString(v) : "?";
            var latency = headers.TryGetLastBytes(OutputRecords.SourceTimestampHeader, out var ts)
                ? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - long.Parse(Encoding.UTF8.GetString(ts), CultureInfo.InvariantCulture)
                : double.NaN;
            received.TryAdd(key, new Received(set, verdict, latency));
        }
        consumer.Close();
    }

    private static void PrintSummary(List<(string Name, ImageSet Images)> sets, ConcurrentDictionary<string, Received> received,
        ConcurrentDictionary<string, int> alerts, int total, TimeSpan elapsed, ModelSlot slot)
    {
        var table = new Table().Title(string.Create(CultureInfo.InvariantCulture, $"OOD gate results — model {slot.Identity.Name} {slot.Identity.Version}, score {slot.Score}, threshold {slot.Threshold:G5}"))
            .AddColumns("set", "messages", "verdicts", "alerts", "flagged");
        foreach (var (name, images) in sets)
        {
            var mine = received.Values.Where(r => r.Set == name).ToArray();
            var flagged = alerts.GetValueOrDefault(name);
            var rate = mine.Length == 0 ? 0 : mine.Count(r => r.Verdict == "ood") / (double)mine.Length;
            var label = name == "clean" ? "(false positives)" : "";
            table.AddRow(name, images.Count.ToString(CultureInfo.InvariantCulture), mine.Length.ToString(CultureInfo.InvariantCulture),
                flagged.ToString(CultureInfo.InvariantCulture), string.Create(CultureInfo.InvariantCulture, $"{rate:P1} {label}").Trim());
        }
        AnsiConsole.Write(table);
        var latencies = received.Values.Select(r => r.LatencyMs).Where(double.IsFinite).Order().ToArray();
        double Quantile(double q) => latencies.Length == 0 ? double.NaN : latencies[Math.Min(latencies.Length - 1, (int)(q * latencies.Length))];
        var corrupted = received.Values.Where(r => r.Set != "clean").ToArray();
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"messages {total}, verdicts {received.Count}, alerts {alerts.Values.Sum()}; detection over all corruptions {(corrupted.Length == 0 ? 0 : corrupted.Count(r => r.Verdict == "ood") / (double)corrupted.Length):P1}"));
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"throughput {received.Count / elapsed.TotalSeconds:F0} messages/s over {elapsed.TotalSeconds:F1} s; end-to-end latency p50 {Quantile(0.5):F0} ms, p99 {Quantile(0.99):F0} ms (producer timestamp → verdict read back)"));
    }
}
