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
        var pipelineMessages = new Option<int>("--pipeline-messages") { Description = "Backlog for the pipeline-against-encoder run", DefaultValueFactory = _ => 20_000 };
        var memoryMessages = new Option<int>("--memory-messages") { Description = "Messages streamed while the worker's memory is sampled", DefaultValueFactory = _ => 100_000 };
        var only = new Option<string[]>("--section") { Description = "Run only these sections: encoder, pipeline, memory, sweep, swap (default: all)", AllowMultipleArgumentsPerToken = true };
        var command = new Command("bench", "Throughput, latency and memory figures of the encoder and the gate")
        {
            ModelCommands.ModelOption, output, messages, quick, pipelineMessages, memoryMessages, only, DataCommand.CacheOption,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var report = new StringBuilder();
            var inv = CultureInfo.InvariantCulture;
            var modelPath = ModelLocator.Resolve(parse.GetValue(ModelCommands.ModelOption));
            var isQuick = parse.GetValue(quick);
            var sections = parse.GetValue(only) is { Length: > 0 } chosen ? chosen : ["encoder", "pipeline", "memory", "sweep", "swap"];
            var test = DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption)).Test;
            report.AppendLine(inv, $"# dlsgan-ood bench — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, model {modelPath}").AppendLine();
            var mixed = ImageSet.Concat([test, MnistC.Apply("fog", test, 0)]);

            if (sections.Contains("encoder")) report.AppendLine(EncoderSection(modelPath, test, isQuick));
            if (sections.Contains("pipeline"))
                report.AppendLine(PipelineAgainstEncoder(modelPath, mixed, isQuick ? 2000 : parse.GetValue(pipelineMessages)));
            if (sections.Contains("sweep")) report.AppendLine(Sweep(modelPath, mixed, isQuick ? 1000 : parse.GetValue(messages), isQuick));
            if (sections.Contains("memory"))
                report.AppendLine(WorkerMemory(modelPath, mixed, isQuick ? 5000 : parse.GetValue(memoryMessages)));
            if (sections.Contains("swap"))
            {
                report.AppendLine("## Hot swap under load").AppendLine();
                report.AppendLine(SwapGap(modelPath, mixed, isQuick)).AppendLine();
            }
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

    private static string EncoderSection(string modelPath, ImageSet test, bool isQuick)
    {
        var report = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
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
            // What the inference thread does per message besides the encoder: PNG decode and preprocessing.
            var pngs = PngPayloads(test);
            var limits = new Core.Imaging.DecodeLimits();
            var buffer = new float[p.ModelSize];
            var decodeClock = Stopwatch.StartNew();
            foreach (var png in pngs)
            {
                var message = new InputMessage(new TopicPartitionOffset("t", 0, 0), null, png, new Headers { { MessageDecoder.ContentTypeHeader, "image/png"u8.ToArray() } }, Timestamp.Default, 0);
                p.WriteModelInput(p.ConformOne(MessageDecoder.Decode(message, limits)).Pixels, buffer);
            }
            report.AppendLine().AppendLine(inv, $"PNG decode and preprocessing (one thread): {pngs.Length / decodeClock.Elapsed.TotalSeconds:F0} images/s.");
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
        return report.ToString();
    }

    /// <summary>Batching settings against throughput (a drained backlog) and latency (a steady 300 msg/s): the defaults come from here.</summary>
    private static string Sweep(string modelPath, ImageSet images, int n, bool isQuick)
    {
        var report = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        report.AppendLine("## Batching settings (mock Kafka cluster over TCP, PNG messages, clean + fog digits)").AppendLine();
        report.AppendLine(inv, $"Throughput: {n:N0} messages waiting in the input topic, first to last acknowledged verdict. Latency: messages produced at a steady 300/s; producer timestamp → verdict read back.").AppendLine();
        report.AppendLine("| MaxBatchSize | MaxWaitMs | throughput msg/s | mean batch | p50 ms @300/s | p95 ms @300/s | p99 ms @300/s |").AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        var payloads = PngPayloads(images);
        foreach (var (size, wait) in isQuick ? QuickSettings : Settings)
        {
            var drained = Drain(modelPath, payloads, n, size, wait);
            var (_, _, p50, p99, p95) = RunGate(modelPath, images.Take(Math.Min(images.Count, isQuick ? 200 : 1500)), size, wait, rate: 300);
            report.AppendLine(inv, $"| {size} | {wait} | {drained.Throughput:F0} | {drained.MeanBatch:F1} | {p50:F0} | {p95:F0} | {p99:F0} |");
            Console.Error.WriteLine(string.Create(inv, $"gate batch {size}/{wait} ms: {drained.Throughput:F0} msg/s, p50 {p50:F0} ms, p99 {p99:F0} ms at 300/s"));
        }
        return report.ToString();
    }

    private static Dictionary<string, string?> BenchSettings(MockKafkaCluster cluster, string modelPath, string group, int maxBatch = 64, int maxWaitMs = 10) => new()
    {
        ["Kafka:BootstrapServers"] = cluster.BootstrapServers,
        ["Kafka:GroupId"] = group,
        ["Kafka:InputTopics:0"] = "images",
        ["Kafka:PassTopic"] = "dlsgan-ood.pass",
        ["Model:Path"] = modelPath,
        ["Metrics:Port"] = "0",
        ["Metrics:BindAddress"] = "127.0.0.1",
        // Only problems on the console: the report is the output here.
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
        ["Batching:MaxBatchSize"] = maxBatch.ToString(CultureInfo.InvariantCulture),
        ["Batching:MaxWaitMs"] = maxWaitMs.ToString(CultureInfo.InvariantCulture),
    };

    private static MockKafkaCluster BenchCluster()
    {
        var cluster = new MockKafkaCluster();
        cluster.CreateTopics(4, "images");
        cluster.CreateTopics(2, "dlsgan-ood.alerts", "dlsgan-ood.quarantine", "dlsgan-ood.pass", "dlsgan-ood.dead-letter");
        return cluster;
    }

    private static byte[][] PngPayloads(ImageSet images) => Enumerable.Range(0, images.Count)
        .Select(i => Core.Imaging.ImageCodec.EncodePng(new Core.Imaging.DecodedImage(images.Width, images.Height, images.Channels, images.Image(i).ToArray()))).ToArray();

    private static IProducer<byte[], byte[]> InputProducer(MockKafkaCluster cluster, int lingerMs = 5) =>
        new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, LingerMs = lingerMs }).Build();

    /// <summary>Sends one PNG message to the input topic, waiting while the local queue is full.</summary>
    private static void ProducePng(IProducer<byte[], byte[]> p, string key, byte[] png)
    {
        var message = new Message<byte[], byte[]> { Key = Encoding.UTF8.GetBytes(key), Value = png, Headers = new Headers { { MessageDecoder.ContentTypeHeader, "image/png"u8.ToArray() } } };
        while (true)
        {
            try
            {
                p.Produce("images", message);
                return;
            }
            catch (ProduceException<byte[], byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull)
            {
                p.Poll(TimeSpan.FromMilliseconds(20));
            }
        }
    }

    private static void ProduceBacklog(MockKafkaCluster cluster, byte[][] payloads, int count)
    {
        using var p = InputProducer(cluster);
        for (var i = 0; i < count; i++) ProducePng(p, $"p{i}", payloads[i % payloads.Length]);
        if (p.Flush(TimeSpan.FromSeconds(120)) > 0) throw new InvalidOperationException("the bench backlog could not be produced");
    }

    /// <summary>
    /// The issue's yardstick: the whole pipeline (consume, decode, batch, encode, publish with acks=all, commit)
    /// draining a backlog, against the bare encoder at the same batch size on the same images in the same run.
    /// The backlog is produced before the gate starts, and the clock runs from the first acknowledged verdict to
    /// the last, so neither the producer nor start-up is counted.
    /// </summary>
    private static string PipelineAgainstEncoder(string modelPath, ImageSet images, int messages)
    {
        const int batch = 64;
        var inv = CultureInfo.InvariantCulture;
        // The bare encoder is measured before and after the pipeline run and averaged: the machine is shared.
        var rawBefore = BareEncoder(modelPath, images, messages, batch);
        var drained = Drain(modelPath, PngPayloads(images), messages, batch, 10);
        var rawAfter = BareEncoder(modelPath, images, messages, batch);
        var raw = (rawBefore + rawAfter) / 2;
        Console.Error.WriteLine(string.Create(inv, $"raw encoder at batch {batch}: {raw:F0} images/s"));

        if (double.IsNaN(drained.Throughput)) return string.Create(inv, $"## Pipeline against the bare encoder\n\nThe gate did not finish {messages} messages in 15 minutes.\n");
        var pipeline = drained.Throughput;
        Console.Error.WriteLine(string.Create(inv, $"pipeline: {pipeline:F0} msg/s ({pipeline / raw:F2} of the encoder)"));

        var halfRate = (int)(pipeline / 2);
        var (_, _, p50, p99, p95) = RunGate(modelPath, images.Take(Math.Min(images.Count, halfRate * 10)), batch, 10, rate: halfRate);
        var text = new StringBuilder();
        text.AppendLine("## Pipeline against the bare encoder (batch 64, wait 10 ms)").AppendLine();
        text.AppendLine(inv, $"{messages:N0} PNG messages (clean and fog test digits) waiting in the input topic of the mock cluster; the gate drains them with acks=all outputs (pass / quarantine / alert records) and offset commits. Same process, same 2 cores, same images.").AppendLine();
        text.AppendLine("| | images/s | ratio |").AppendLine("|---|---:|---:|");
        text.AppendLine(inv, $"| bare encoder (`Inference.EncodeBatch`, preprocessed tensors; mean of {rawBefore:F0} before and {rawAfter:F0} after) | {raw:F0} | 1.00 |");
        text.AppendLine(inv, $"| whole pipeline (first to last acknowledged verdict) | {pipeline:F0} | **{pipeline / raw:F2}** |").AppendLine();
        text.AppendLine(inv, $"Mean batch {drained.MeanBatch:F1}; the inference thread spent {drained.InferenceSeconds:F1} s of the {drained.Seconds:F1} s decoding and encoding ({100 * drained.InferenceSeconds / drained.Seconds:F0}%).").AppendLine();
        text.AppendLine(inv, $"Latency at half the maximum rate ({halfRate} msg/s, producer timestamp → verdict read back): p50 {p50:F0} ms, p95 {p95:F0} ms, p99 {p99:F0} ms.");
        return text.ToString();
    }

    private static double BareEncoder(string modelPath, ImageSet images, int count, int batch)
    {
        using var checkpoint = Checkpoint.Load(modelPath);
        var model = checkpoint.Model;
        var p = model.Preprocessing;
        var input = p.ToModelInput(images, 0, images.Count);
        var chunks = Enumerable.Range(0, images.Count / batch).Select(b => input.AsSpan(b * batch * p.ModelSize, batch * p.ModelSize).ToArray()).ToArray();
        Inference.EncodeBatch(model, chunks[0], batch);
        var sw = Stopwatch.StartNew();
        var encoded = 0;
        for (var b = 0; encoded < count; b++, encoded += batch) Inference.EncodeBatch(model, chunks[b % chunks.Length], batch);
        return encoded / sw.Elapsed.TotalSeconds;
    }

    private sealed record Drained(double Throughput, double MeanBatch, double InferenceSeconds, double Seconds);

    /// <summary>
    /// A backlog produced before the gate starts, drained with the given batching; the clock runs from the first
    /// acknowledged verdict to the last, so neither the producer nor start-up is counted.
    /// </summary>
    private static Drained Drain(string modelPath, byte[][] payloads, int messages, int maxBatch, int maxWaitMs)
    {
        using var cluster = BenchCluster();
        ProduceBacklog(cluster, payloads, messages);
        var app = WorkerHost.Build([], BenchSettings(cluster, modelPath, "bench-drain", maxBatch, maxWaitMs), l => l.SetMinimumLevel(LogLevel.Warning));
        var worker = (GateWorker)app.Services.GetService(typeof(GateWorker))!;
        var metrics = (GateMetrics)app.Services.GetService(typeof(GateMetrics))!;
        var clock = Stopwatch.StartNew();
        long completed = 0;
        double first = double.NaN, last = double.NaN;
        using var done = new ManualResetEventSlim();
        worker.Completed += _ =>
        {
            var n = Interlocked.Increment(ref completed);
            if (n == 1) first = clock.Elapsed.TotalSeconds;
            if (n == messages)
            {
                last = clock.Elapsed.TotalSeconds;
                done.Set();
            }
        };
        app.StartAsync().GetAwaiter().GetResult();
        var finished = done.Wait(TimeSpan.FromMinutes(15));
        var inferenceSeconds = metrics.InferenceSeconds.Sum;
        var meanBatch = metrics.BatchSize.Count > 0 ? metrics.BatchSize.Sum / metrics.BatchSize.Count : 0;
        app.StopAsync().GetAwaiter().GetResult();
        app.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return finished
            ? new Drained((messages - 1) / (last - first), meanBatch, inferenceSeconds, last - first)
            : new Drained(double.NaN, meanBatch, inferenceSeconds, double.NaN);
    }

    /// <summary>
    /// RSS and open descriptors of a worker process (the broker and its growing log live in this process, not
    /// there) while a long stream passes through it.
    /// </summary>
    private static string WorkerMemory(string modelPath, ImageSet images, int messages)
    {
        var inv = CultureInfo.InvariantCulture;
        using var cluster = BenchCluster();
        var payloads = PngPayloads(images);
        using var gate = GateProcess.Start(cluster, modelPath, exactlyOnce: false);
        var step = Math.Max(1000, messages / 10);
        var seen = 0;
        // One producer, kept at most two samples ahead of the verdicts so the broker's backlog stays modest.
        var producer = Task.Run(() =>
        {
            using var p = InputProducer(cluster);
            for (var i = 0; i < messages; i++)
            {
                while (i - Volatile.Read(ref seen) > 2 * step) Thread.Sleep(10);
                ProducePng(p, $"m{i}", payloads[i % payloads.Length]);
            }
            if (p.Flush(TimeSpan.FromSeconds(120)) > 0) throw new InvalidOperationException("the memory bench's input could not be produced");
        });
        var rows = new StringBuilder();
        var clock = Stopwatch.StartNew();
        var nextSample = 0;
        using (var reader = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = "bench-memory", AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false }).Build())
        {
            reader.Subscribe(["dlsgan-ood.quarantine", "dlsgan-ood.pass", "dlsgan-ood.dead-letter"]);
            var lastProgress = Stopwatch.StartNew();
            while (seen < messages && !producer.IsFaulted && lastProgress.Elapsed < TimeSpan.FromMinutes(2))
            {
                ConsumeResult<byte[], byte[]>? r;
                try { r = reader.Consume(TimeSpan.FromMilliseconds(100)); } catch (ConsumeException) { continue; }
                if (r?.Message is null) continue;
                Volatile.Write(ref seen, seen + 1);
                lastProgress.Restart();
                if (seen < nextSample && seen != messages) continue;
                nextSample += step;
                using var process = Process.GetProcessById(gate.Id);
                var fds = Directory.Exists($"/proc/{gate.Id}/fd") ? Directory.GetFiles($"/proc/{gate.Id}/fd").Length : process.HandleCount;
                rows.AppendLine(inv, $"| {seen:N0} | {clock.Elapsed.TotalSeconds:F0} | {process.WorkingSet64 / 1048576.0:F0} | {fds} |");
                Console.Error.WriteLine(string.Create(inv, $"memory: {seen} verdicts, worker RSS {process.WorkingSet64 / 1048576.0:F0} MiB"));
            }
            reader.Close();
        }
        if (seen < messages) rows.AppendLine(inv, $"| stopped at {seen:N0}: {(producer.IsFaulted ? producer.Exception!.InnerException!.Message : "no verdict for 2 minutes")} | | | |");
        else producer.Wait();
        var text = new StringBuilder();
        text.AppendLine(inv, $"## Worker memory over {messages:N0} messages").AppendLine();
        text.AppendLine("`dlsgan-ood worker` in its own process (so the mock broker's growing log is not counted), fed as fast as it drains (at most two rows ahead); sampled from outside.").AppendLine();
        text.AppendLine("| verdicts | elapsed s | worker RSS MiB | open descriptors |").AppendLine("|---:|---:|---:|---:|");
        text.Append(rows);
        return text.ToString();
    }

    /// <summary>
    /// A steady 300 msg/s stream; a promotion of the same checkpoint under another version label arrives on the
    /// control topic mid-stream. Gaps between consecutive scored batches around the swap vs the usual gap.
    /// </summary>
    private static string SwapGap(string modelPath, ImageSet images, bool quick)
    {
        using var cluster = BenchCluster();
        cluster.CreateTopics(1, ModelControl.DefaultTopic);
        var payloads = PngPayloads(images);
        var app = WorkerHost.Build([], BenchSettings(cluster, modelPath, "bench-swap"), l => l.SetMinimumLevel(LogLevel.Warning));
        var worker = (GateWorker)app.Services.GetService(typeof(GateWorker))!;
        var provider = (ModelProvider)app.Services.GetService(typeof(ModelProvider))!;
        var batches = new System.Collections.Concurrent.ConcurrentQueue<(double At, string Version, int Size)>();
        var clock = Stopwatch.StartNew();
        worker.BatchScored += (_, v, n) => batches.Enqueue((clock.Elapsed.TotalMilliseconds, v, n));
        app.StartAsync().GetAwaiter().GetResult();
        var seconds = quick ? 4 : 8;
        var producer = Task.Run(() =>
        {
            using var p = InputProducer(cluster, lingerMs: 1);
            var start = clock.Elapsed;
            for (var i = 0; i < seconds * 300; i++)
            {
                var due = start + TimeSpan.FromSeconds(i / 300.0);
                if (due > clock.Elapsed) Thread.Sleep(due - clock.Elapsed);
                ProducePng(p, $"w{i}", payloads[i % payloads.Length]);
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

    private static (double Throughput, double MeanBatch, double P50, double P99, double P95) RunGate(string modelPath, ImageSet images, int maxBatch, int maxWaitMs, int rate)
    {
        using var cluster = BenchCluster();
        var settings = BenchSettings(cluster, modelPath, "bench", maxBatch, maxWaitMs);
        settings["Batching:ChannelCapacity"] = Math.Max(1024, maxBatch).ToString(CultureInfo.InvariantCulture);
        var app = WorkerHost.Build([], settings, l => l.SetMinimumLevel(LogLevel.Warning));
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
        return (latencies.Count / elapsed, meanBatch, Q(0.5), Q(0.99), Q(0.95));
    }
}
