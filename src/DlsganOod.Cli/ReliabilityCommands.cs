using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using DlsganOod.Core.Data;
using DlsganOod.Core.Imaging;
using DlsganOod.Core.Model;
using DlsganOod.Worker;
using Microsoft.Extensions.Logging;

namespace DlsganOod.Cli;

/// <summary>`faults` (the fault table of docs/reliability.md) and `soak` (resources over time at 70% of capacity).</summary>
internal static class ReliabilityCommands
{
    public static Command Faults()
    {
        var scenario = new Option<string[]>("--scenario") { Description = $"Scenario(s): {string.Join(", ", FaultScenarios.Names)} (default: all)", AllowMultipleArgumentsPerToken = true };
        var exactlyOnce = new Option<bool>("--exactly-once") { Description = "Run the gate with Kafka transactions" };
        var messages = new Option<int>("--messages") { DefaultValueFactory = _ => 600 };
        var output = new Option<string?>("--out") { Description = "Append the table to this Markdown file" };
        var command = new Command("faults", "Inject faults into an embedded Kafka (mock cluster) under a steady stream and count lost and duplicated verdicts")
        {
            ModelCommands.ModelOption, scenario, exactlyOnce, messages, output, DataCommand.CacheOption,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var model = ModelLocator.Resolve(parse.GetValue(ModelCommands.ModelOption));
            var images = Payloads(parse.GetValue(DataCommand.CacheOption), 200);
            var eos = parse.GetValue(exactlyOnce);
            var names = parse.GetValue(scenario) is { Length: > 0 } chosen ? chosen : FaultScenarios.Names;
            var table = new StringBuilder(FaultResult.MarkdownHeader).Append('\n');
            Console.WriteLine(FaultResult.MarkdownHeader);
            foreach (var name in names)
            {
                var session = name == "rebalance" ? 3000 : 10_000;
                var result = FaultScenarios.Run(name, eos, images, c => FaultScenarios.StartInProcess(c, model, eos, session), parse.GetValue(messages), 150,
                    CliSupport.Info, c => GateProcess.Start(c, model, eos));
                Console.WriteLine(result.ToMarkdownRow());
                table.Append(result.ToMarkdownRow()).Append('\n');
            }
            if (parse.GetValue(output) is { } path) File.AppendAllText(path, table.ToString());
            return 0;
        }));
        return command;
    }

    public static Command Soak()
    {
        var minutes = new Option<double>("--minutes") { DefaultValueFactory = _ => 5 };
        var rate = new Option<int>("--rate") { Description = "Messages per second (default: 70% of a measured maximum)", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out") { Description = "Write the figures to this Markdown file" };
        var command = new Command("soak", "Run the gate at 70% of its measured maximum rate and print RSS, handles, live tensors and p99 latency over time")
        {
            ModelCommands.ModelOption, minutes, rate, output, DataCommand.CacheOption,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var inv = CultureInfo.InvariantCulture;
            var model = ModelLocator.Resolve(parse.GetValue(ModelCommands.ModelOption));
            var images = Payloads(parse.GetValue(DataCommand.CacheOption), 500);
            using var cluster = new MockKafkaCluster();
            cluster.CreateTopics(4, FaultScenarios.Input);
            cluster.CreateTopics(2, FaultScenarios.Pass, FaultScenarios.Quarantine, FaultScenarios.DeadLetter, "dlsgan-ood.alerts");
            using var gate = FaultScenarios.StartInProcess(cluster, model, exactlyOnce: false);
            using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, LingerMs = 2 }).Build();
            var latencies = new System.Collections.Concurrent.ConcurrentQueue<double>();
            var verdicts = 0L;
            using var stop = new CancellationTokenSource();
            var reader = Task.Factory.StartNew(() => Read(cluster, latencies, ref verdicts, stop.Token), TaskCreationOptions.LongRunning);

            var sent = 0L;
            void Send(int i)
            {
                var message = new Message<byte[], byte[]> { Key = Encoding.UTF8.GetBytes($"s-{i}"), Value = images[i % images.Count], Headers = new Headers { { MessageDecoder.ContentTypeHeader, "image/png"u8.ToArray() } } };
                while (true)
                {
                    try { producer.Produce(FaultScenarios.Input, message); break; }
                    catch (ProduceException<byte[], byte[]> ex) when (ex.Error.Code == ErrorCode.Local_QueueFull) { producer.Poll(TimeSpan.FromMilliseconds(10)); }
                }
                Interlocked.Increment(ref sent);
            }

            var target = parse.GetValue(rate);
            if (target <= 0)
            {
                // Capacity: a burst of 3,000 messages, timed from first send to last verdict.
                var sw = Stopwatch.StartNew();
                for (var i = 0; i < 3000; i++) Send(i);
                while (Interlocked.Read(ref verdicts) < 3000 && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(50);
                var max = 3000 / sw.Elapsed.TotalSeconds;
                target = Math.Max(1, (int)(0.7 * max));
                CliSupport.Info(string.Create(inv, $"measured maximum {max:F0} msg/s; soaking at 70% = {target} msg/s"));
            }
            var report = new StringBuilder();
            report.AppendLine(inv, $"Soak at {target} msg/s for {parse.GetValue(minutes):F1} min ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores).").AppendLine();
            report.AppendLine("| elapsed s | verdicts | RSS MiB | handles | live tensors | p99 latency ms |").AppendLine("|---:|---:|---:|---:|---:|---:|");
            Console.WriteLine(report.ToString().TrimEnd());
            var clock = Stopwatch.StartNew();
            var duration = TimeSpan.FromMinutes(parse.GetValue(minutes));
            var start = Interlocked.Read(ref sent);
            var nextReport = TimeSpan.FromSeconds(10);
            var rows = new List<(double Rss, double P99)>();
            while (clock.Elapsed < duration)
            {
                var due = (long)(clock.Elapsed.TotalSeconds * target);
                while (Interlocked.Read(ref sent) - start < due) Send((int)Interlocked.Read(ref sent));
                if (clock.Elapsed >= nextReport || clock.Elapsed >= duration)
                {
                    nextReport += TimeSpan.FromSeconds(10);
                    var window = new List<double>();
                    while (latencies.TryDequeue(out var l)) window.Add(l);
                    window.Sort();
                    var p99 = window.Count == 0 ? double.NaN : window[Math.Min(window.Count - 1, (int)(0.99 * window.Count))];
                    using var proc = Process.GetCurrentProcess();
                    var rss = proc.WorkingSet64 / 1048576.0;
                    rows.Add((rss, p99));
                    var row = string.Create(inv, $"| {clock.Elapsed.TotalSeconds:F0} | {Interlocked.Read(ref verdicts)} | {rss:F0} | {proc.HandleCount} | {TorchSharp.torch.Tensor.TotalCount} | {p99:F0} |");
                    Console.WriteLine(row);
                    report.AppendLine(row);
                }
                Thread.Sleep(5);
            }
            stop.Cancel();
            reader.Wait(TimeSpan.FromSeconds(10));
            if (rows.Count >= 2)
                report.AppendLine().AppendLine(inv, $"RSS first → last window: {rows[0].Rss:F0} → {rows[^1].Rss:F0} MiB; p99 first → last: {rows[0].P99:F0} → {rows[^1].P99:F0} ms.");
            if (parse.GetValue(output) is { } path) File.WriteAllText(path, report.ToString());
            return 0;
        }));
        return command;
    }

    private static void Read(MockKafkaCluster cluster, System.Collections.Concurrent.ConcurrentQueue<double> latencies, ref long verdicts, CancellationToken stop)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers, GroupId = "soak-reader", AutoOffsetReset = AutoOffsetReset.Earliest, EnableAutoCommit = false, FetchWaitMaxMs = 20,
        }).Build();
        consumer.Subscribe([FaultScenarios.Pass, FaultScenarios.Quarantine, FaultScenarios.DeadLetter]);
        while (!stop.IsCancellationRequested)
        {
            ConsumeResult<byte[], byte[]>? r;
            try { r = consumer.Consume(TimeSpan.FromMilliseconds(100)); } catch (ConsumeException) { continue; }
            if (r?.Message?.Headers is not { } h || !h.TryGetLastBytes(OutputRecords.SourceTimestampHeader, out var ts)) continue;
            latencies.Enqueue(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - long.Parse(Encoding.UTF8.GetString(ts), CultureInfo.InvariantCulture));
            Interlocked.Increment(ref verdicts);
        }
        consumer.Close();
    }

    /// <summary>PNG payloads: test digits, every fourth one under fog so both verdicts occur.</summary>
    private static List<byte[]> Payloads(string? cache, int count)
    {
        var test = DataCommand.LoadMnist(cache).Test;
        var chosen = test.Select(Enumerable.Range(0, count).Select(i => i * test.Count / count).ToArray());
        var fog = Core.Corruptions.MnistC.Apply("fog", chosen, 0);
        return Enumerable.Range(0, count).Select(i =>
        {
            var set = i % 4 == 3 ? fog : chosen;
            return ImageCodec.EncodePng(new DecodedImage(28, 28, 1, set.Image(i).ToArray()));
        }).ToList();
    }
}

/// <summary>`dlsgan-ood worker` as a child process against a cluster: the "kill" fault scenario kills it with SIGKILL.</summary>
internal sealed class GateProcess : IKillable
{
    private readonly Process process;

    private GateProcess(Process process) => this.process = process;

    /// <summary>The worker's process id (the bench samples its memory from outside, away from the broker's log).</summary>
    public int Id => process.Id;

    public static GateProcess Start(MockKafkaCluster cluster, string modelPath, bool exactlyOnce)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(psi.FileName) == "dotnet") psi.ArgumentList.Add(typeof(GateProcess).Assembly.Location);
        psi.ArgumentList.Add("worker");
        foreach (var (k, v) in FaultScenarios.GateSettings(cluster, modelPath, exactlyOnce))
            if (v is not null) psi.ArgumentList.Add($"--{k}={v}");
        var p = Process.Start(psi) ?? throw new InvalidOperationException("worker process did not start");
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return new GateProcess(p);
    }

    public void Kill()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true); // SIGKILL: no drain, no commit
        process.WaitForExit(10_000);
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            // SIGTERM: the worker drains, commits and leaves the group.
            Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit();
            if (!process.WaitForExit(30_000)) process.Kill(entireProcessTree: true);
        }
        process.Dispose();
    }
}
