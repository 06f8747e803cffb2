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

namespace DlsganOod.Cli;

/// <summary>
/// Speed and memory figures (never timed unit tests: these machines are shared). Prints a Markdown report
/// and writes it with --out: encoder throughput per batch size, the gate end to end on the mock cluster per
/// batching setting, and live tensors / RSS over many batches (flat = no leak).
/// </summary>
internal static class BenchCommand
{
    private static readonly int[] QuickSizes = [1, 64];
    private static readonly int[] Sizes = [1, 8, 16, 32, 64, 128, 256];
    private static readonly (int, int)[] QuickSettings = [(64, 10)];
    private static readonly (int, int)[] Settings = [(1, 0), (16, 5), (64, 10), (128, 20), (256, 50)];

    public static Command Create()
    {
        var output = new Option<string?>("--out") { Description = "Also write the report to this Markdown file" };
        var messages = new Option<int>("--messages") { Description = "Messages per gate run", DefaultValueFactory = _ => 3000 };
        var quick = new Option<bool>("--quick") { Description = "Fewer sizes and messages (a smoke run)" };
        var command = new Command("bench", "Throughput, latency and memory figures of the encoder and the gate") { ModelCommands.ModelOption, output, messages, quick, DataCommand.CacheOption };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var report = new StringBuilder();
            var inv = CultureInfo.InvariantCulture;
            var modelPath = ModelLocator.Resolve(parse.GetValue(ModelCommands.ModelOption));
            var isQuick = parse.GetValue(quick);
            var test = DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption)).Test;
            report.AppendLine(inv, $"# dlsgan-ood bench — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, model {modelPath}").AppendLine();

            using (var checkpoint = Checkpoint.Load(modelPath))
            {
                var model = checkpoint.Model;
                var p = model.Preprocessing;
                var input = p.ToModelInput(test, 0, test.Count);
                report.AppendLine("## Encoder throughput (log_likelihood path, 2,000 test digits per size)").AppendLine();
                report.AppendLine("| batch size | images/s | ms per batch |").AppendLine("|---:|---:|---:|");
                foreach (var size in isQuick ? QuickSizes : Sizes)
                {
                    Inference.EncodeBatch(model, input.AsSpan(0, size * p.ModelSize).ToArray(), size); // warm-up
                    var sw = Stopwatch.StartNew();
                    var batches = 0;
                    for (var start = 0; start + size <= test.Count; start += size, batches++)
                        Inference.EncodeBatch(model, input.AsSpan(start * p.ModelSize, size * p.ModelSize).ToArray(), size);
                    var seconds = sw.Elapsed.TotalSeconds;
                    report.AppendLine(inv, $"| {size} | {batches * size / seconds:F0} | {1000 * seconds / batches:F1} |");
                    Console.Error.WriteLine(string.Create(inv, $"encoder batch {size}: {batches * size / seconds:F0} images/s"));
                }
                var scores = OodScoreModel.Load(checkpoint.Directory);
                if (scores is not null)
                {
                    var sw = Stopwatch.StartNew();
                    for (var start = 0; start + 64 <= test.Count; start += 64)
                        scores.Score(OodScoreModel.Mahalanobis, ScoreFeatures.ComputeBatch(model, input.AsSpan(start * p.ModelSize, 64 * p.ModelSize).ToArray(), 64));
                    report.AppendLine().AppendLine(inv, $"Scores beyond the paper (E, G(E(x)), SSIM, Mahalanobis) at batch 64: {test.Count / 64 * 64 / sw.Elapsed.TotalSeconds:F0} images/s.");
                }

                report.AppendLine().AppendLine("## Memory over repeated batches (batch 64)").AppendLine();
                report.AppendLine("| batches | live tensors | RSS MiB |").AppendLine("|---:|---:|---:|");
                var chunk = input.AsSpan(0, 64 * p.ModelSize).ToArray();
                for (var round = 0; round <= (isQuick ? 2 : 5); round++)
                {
                    if (round > 0)
                        for (var i = 0; i < 200; i++) Inference.EncodeBatch(model, chunk, 64);
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    using var proc = Process.GetCurrentProcess();
                    report.AppendLine(inv, $"| {round * 200} | {TorchSharp.torch.Tensor.TotalCount} | {proc.WorkingSet64 / 1048576.0:F0} |");
                }
            }

            report.AppendLine().AppendLine("## Gate end to end (mock Kafka cluster over TCP, PNG messages, clean + fog digits)").AppendLine();
            report.AppendLine("Throughput: all messages produced at once (backlog). Latency: messages produced at a steady 300/s; producer timestamp → verdict read back.").AppendLine();
            report.AppendLine("| MaxBatchSize | MaxWaitMs | throughput msg/s | mean batch | p50 ms @300/s | p99 ms @300/s |").AppendLine("|---:|---:|---:|---:|---:|---:|");
            var n = isQuick ? 400 : parse.GetValue(messages);
            var half = test.Take(n / 2);
            var images = ImageSet.Concat([half, MnistC.Apply("fog", half, 0)]);
            foreach (var (size, wait) in isQuick ? QuickSettings : Settings)
            {
                var (throughput, meanBatch, _, _) = RunGate(modelPath, images, size, wait, rate: 0);
                var (_, _, p50, p99) = RunGate(modelPath, images.Take(Math.Min(images.Count, isQuick ? 200 : 1500)), size, wait, rate: 300);
                report.AppendLine(inv, $"| {size} | {wait} | {throughput:F0} | {meanBatch:F1} | {p50:F0} | {p99:F0} |");
                Console.Error.WriteLine(string.Create(inv, $"gate batch {size}/{wait} ms: {throughput:F0} msg/s, p50 {p50:F0} ms, p99 {p99:F0} ms at 300/s"));
            }
            report.AppendLine().AppendLine("## Hot swap under load").AppendLine();
            report.AppendLine(SwapGap(modelPath, images, isQuick)).AppendLine();
            var text = report.ToString();
            Console.WriteLine(text);
            if (parse.GetValue(output) is { } path)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                File.WriteAllText(path, text);
            }
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// A steady 300 msg/s stream; a promotion of the same checkpoint under another version label arrives on the
    /// control topic mid-stream. Gaps between consecutive scored batches around the swap vs the usual gap.
    /// </summary>
    private static string SwapGap(string modelPath, ImageSet images, bool quick)
    {
        using var cluster = new MockKafkaCluster();
        cluster.CreateTopics(4, "images");
        cluster.CreateTopics(1, ModelControl.DefaultTopic);
        cluster.CreateTopics(2, "dlsgan-ood.alerts", "dlsgan-ood.quarantine", "dlsgan-ood.pass", "dlsgan-ood.dead-letter");
        var app = WorkerHost.Build([], new Dictionary<string, string?>
        {
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers, ["Kafka:GroupId"] = "bench-swap", ["Kafka:InputTopics:0"] = "images",
            ["Kafka:PassTopic"] = "dlsgan-ood.pass", ["Model:Path"] = modelPath, ["Metrics:Port"] = "0", ["Metrics:BindAddress"] = "127.0.0.1",
            ["Logging:LogLevel:Default"] = "Warning", ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
        }, l => l.SetMinimumLevel(LogLevel.Warning));
        var worker = (GateWorker)app.Services.GetService(typeof(GateWorker))!;
        var provider = (ModelProvider)app.Services.GetService(typeof(ModelProvider))!;
        var batches = new System.Collections.Concurrent.ConcurrentQueue<(double At, string Version, int Size)>();
        var clock = Stopwatch.StartNew();
        worker.BatchScored += (_, v, n) => batches.Enqueue((clock.Elapsed.TotalMilliseconds, v, n));
        app.StartAsync().GetAwaiter().GetResult();
        var seconds = quick ? 4 : 8;
        var producer = Task.Run(() =>
        {
            using var p = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, LingerMs = 1 }).Build();
            var start = clock.Elapsed;
            for (var i = 0; i < seconds * 300; i++)
            {
                var due = start + TimeSpan.FromSeconds(i / 300.0);
                if (due > clock.Elapsed) Thread.Sleep(due - clock.Elapsed);
                var image = new Core.Imaging.DecodedImage(images.Width, images.Height, 1, images.Image(i % images.Count).ToArray());
                p.Produce("images", new Message<byte[], byte[]> { Key = Encoding.UTF8.GetBytes($"w{i}"), Value = Core.Imaging.ImageCodec.EncodePng(image), Headers = new Headers { { "content-type", "image/png"u8.ToArray() } } });
            }
            p.Flush(TimeSpan.FromSeconds(30));
        });
        Thread.Sleep(TimeSpan.FromSeconds(seconds / 2.0));
        var checkpoint = Checkpoint.Load(modelPath);
        var sha = checkpoint.Sha256;
        checkpoint.Dispose();
        var announcedAt = clock.Elapsed.TotalMilliseconds;
        ModelControl.Announce(new ClientConfig { BootstrapServers = cluster.BootstrapServers }, ModelControl.DefaultTopic,
            new ModelEvent("default", "bench-v2", Path.GetFullPath(modelPath), sha, 0, ModelEvent.Promoted, false, DateTimeOffset.UtcNow));
        producer.Wait();
        Thread.Sleep(1500);
        app.StopAsync().GetAwaiter().GetResult();
        app.DisposeAsync().AsTask().GetAwaiter().GetResult();
        var list = batches.ToArray();
        var gaps = list.Zip(list.Skip(1), (a, b) => (At: b.At, Gap: b.At - a.At, Swapped: a.Version != b.Version)).ToArray();
        var swapIndex = Array.FindIndex(gaps, g => g.Swapped);
        if (swapIndex < 0) return "The promotion did not take effect during the run.";
        var normal = gaps.Where(g => Math.Abs(g.At - gaps[swapIndex].At) > 1000).Select(g => g.Gap).Order().ToArray();
        var median = normal.Length == 0 ? double.NaN : normal[normal.Length / 2];
        var around = gaps.Where(g => Math.Abs(g.At - gaps[swapIndex].At) <= 1000).Max(g => g.Gap);
        double Throughput(Func<(double At, string Version, int Size), bool> where) => list.Where(where).Sum(b => b.Size) / 1.0;
        var swapAt = gaps[swapIndex].At;
        var duringSwap = Throughput(b => b.At > swapAt - 500 && b.At <= swapAt + 500);
        var inv = CultureInfo.InvariantCulture;
        return string.Create(inv, $"Steady 300 msg/s, batch ≤ 64, wait ≤ 10 ms. Promotion announced at {announcedAt / 1000:F2} s, first batch of the new version at {swapAt / 1000:F2} s ({swapAt - announcedAt:F0} ms: control-topic delivery, load and checks). ") +
            string.Create(inv, $"Usual gap between batches (median, away from the swap): {median:F0} ms; longest gap within ±1 s of the swap: {around:F0} ms ({around / median:F1}× the usual gap). ") +
            string.Create(inv, $"Throughput in the second around the swap: {duringSwap:F0} msg/s (offered 300).");
    }

    private static (double Throughput, double MeanBatch, double P50, double P99) RunGate(string modelPath, ImageSet images, int maxBatch, int maxWaitMs, int rate)
    {
        using var cluster = new MockKafkaCluster();
        cluster.CreateTopics(4, "images");
        cluster.CreateTopics(2, "dlsgan-ood.alerts", "dlsgan-ood.quarantine", "dlsgan-ood.pass", "dlsgan-ood.dead-letter");
        var app = WorkerHost.Build([], new Dictionary<string, string?>
        {
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers,
            ["Kafka:GroupId"] = "bench",
            ["Kafka:InputTopics:0"] = "images",
            ["Kafka:PassTopic"] = "dlsgan-ood.pass",
            ["Model:Path"] = modelPath,
            ["Metrics:Port"] = "0",
            ["Metrics:BindAddress"] = "127.0.0.1",
            // Only problems on the console: the progress display and the report are the output here.
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
            ["Batching:MaxBatchSize"] = maxBatch.ToString(CultureInfo.InvariantCulture),
            ["Batching:MaxWaitMs"] = maxWaitMs.ToString(CultureInfo.InvariantCulture),
            ["Batching:ChannelCapacity"] = Math.Max(1024, maxBatch).ToString(CultureInfo.InvariantCulture),
        }, l => l.SetMinimumLevel(LogLevel.Warning));
        app.StartAsync().GetAwaiter().GetResult();
        var metrics = (GateMetrics)app.Services.GetService(typeof(GateMetrics))!;
        var latencies = new List<double>();
        var clock = Stopwatch.StartNew();
        var producer = Task.Run(() =>
        {
            using var p = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, LingerMs = 1 }).Build();
            StreamCommands.ProduceImages(p, "images", images, "b/", raw: false, i =>
            {
                if (rate <= 0) return;
                var due = TimeSpan.FromSeconds(i / (double)rate);
                if (due > clock.Elapsed) Thread.Sleep(due - clock.Elapsed);
            });
        });
        using (var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = "bench-reader", AutoOffsetReset = AutoOffsetReset.Earliest, FetchWaitMaxMs = 20 }).Build())
        {
            consumer.Subscribe(["dlsgan-ood.quarantine", "dlsgan-ood.pass", "dlsgan-ood.dead-letter"]);
            var deadline = DateTime.UtcNow.AddMinutes(5);
            while (latencies.Count < images.Count && DateTime.UtcNow < deadline)
            {
                ConsumeResult<byte[], byte[]>? r;
                try { r = consumer.Consume(TimeSpan.FromMilliseconds(100)); } catch (ConsumeException) { continue; }
                if (r?.Message?.Headers is not { } h || !h.TryGetLastBytes(OutputRecords.SourceTimestampHeader, out var ts)) continue;
                latencies.Add(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - long.Parse(Encoding.UTF8.GetString(ts), CultureInfo.InvariantCulture));
            }
            consumer.Close();
        }
        var elapsed = clock.Elapsed.TotalSeconds;
        producer.Wait();
        var meanBatch = metrics.BatchSize.Count > 0 ? metrics.BatchSize.Sum / metrics.BatchSize.Count : 0;
        app.StopAsync().GetAwaiter().GetResult();
        app.DisposeAsync().AsTask().GetAwaiter().GetResult();
        latencies.Sort();
        double Q(double q) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)(q * latencies.Count))];
        return (latencies.Count / elapsed, meanBatch, Q(0.5), Q(0.99));
    }
}
