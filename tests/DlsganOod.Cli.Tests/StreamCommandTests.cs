using System.Text;
using Confluent.Kafka;
using DlsganOod.Core.Data;
using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;
using DlsganOod.Core.Tests;
using DlsganOod.Worker;
using static TorchSharp.torch;

namespace DlsganOod.Cli.Tests;

/// <summary>A tiny model calibrated on ring images, so the stream commands have something to serve.</summary>
public sealed class CalibratedTinyModel : IDisposable
{
    public CalibratedTinyModel()
    {
        manual_seed(7);
        using var model = new DlsganModel(new ModelConfig { Preset = "test", BaseWidth = 2, LatentDim = 8 }, Preprocessing.Mnist);
        var ll = Inference.Encode(model, Synthetic.Rings(100, seed: 9)).LogLikelihood.Order().ToArray();
        Path = Dir.File("model");
        Checkpoint.Save(model, Path, new CheckpointMetadata
        {
            Name = "tiny",
            Calibration = new CalibrationRecord { Threshold = ll[10], TargetFpr = 0.1, AchievedFpr = 0.1, Count = 100 },
        });
    }

    public TempDir Dir { get; } = new();
    public string Path { get; }
    public void Dispose() => Dir.Dispose();
}

public class StreamCommandTests(CalibratedTinyModel model) : IClassFixture<CalibratedTinyModel>
{
    [Fact]
    public void Demo_runs_the_whole_gate_embedded_and_prints_the_table()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "demo", "--model", model.Path, "--limit", "40", "--corruption", "fog", "stripe");
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("clean", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("fog", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("stripe", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("messages 120, verdicts 120", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("throughput", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("p99", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Produce_sends_png_or_raw_and_alerts_shows_and_exports_flagged_images()
    {
        using var dir = new TempDir();
        using var cluster = new MockKafkaCluster();
        cluster.CreateTopics(1, "images", "dlsgan-ood.alerts", "dlsgan-ood.quarantine");
        var images = dir.File("in-idx3-ubyte");
        Idx.WriteImages(images, Synthetic.Rings(5));
        var produced = Cli.Run(dir.Path, "produce", "--bootstrap-servers", cluster.BootstrapServers, "--topic", "images", "--input", images, "--key-prefix", "k-");
        Assert.True(produced.ExitCode == 0, produced.All);
        var raw = Cli.Run(dir.Path, "produce", "--bootstrap-servers", cluster.BootstrapServers, "--topic", "images", "--input", images, "--raw");
        Assert.True(raw.ExitCode == 0, raw.All);
        using (var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = "check", AutoOffsetReset = AutoOffsetReset.Earliest }).Build())
        {
            consumer.Subscribe("images");
            var got = new List<ConsumeResult<byte[], byte[]>>();
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (got.Count < 10 && DateTime.UtcNow < deadline)
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } m) got.Add(m);
            Assert.Equal(10, got.Count);
            Assert.Equal("k-0", Encoding.UTF8.GetString(got[0].Message.Key));
            Assert.True(got[5].Message.Headers.TryGetLastBytes("content-type", out var ct));
            Assert.Equal("image/x-raw;width=28;height=28;channels=1", Encoding.UTF8.GetString(ct));
            Assert.Equal(784, got[5].Message.Value.Length);
        }

        // The gate decides; the alerts view reads the alert topic and exports the quarantined images.
        var app = WorkerHost.Build([], new Dictionary<string, string?>
        {
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers, ["Kafka:InputTopics:0"] = "images", ["Model:Path"] = model.Path,
            ["Metrics:Port"] = "0", ["Metrics:BindAddress"] = "127.0.0.1", ["Kafka:SessionTimeoutMs"] = "3000",
        });
        await app.StartAsync();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            var metrics = (GateMetrics)app.Services.GetService(typeof(GateMetrics))!;
            while (metrics.Scored.Value < 10 && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.Equal(10, metrics.Scored.Value);
            var flagged = (int)metrics.Flagged.Value;
            var alerts = Cli.Run(dir.Path, new Dictionary<string, string> { ["DLSGANOOD_Kafka__BootstrapServers"] = cluster.BootstrapServers },
                "alerts", "--from-beginning", "--export", dir.File("flagged"));
            Assert.True(alerts.ExitCode == 0, alerts.All);
            Assert.Contains($"{flagged} alerts shown", alerts.Stderr, StringComparison.Ordinal);
            if (flagged > 0)
            {
                Assert.Contains("log-likelihood", alerts.Stdout, StringComparison.Ordinal);
                Assert.Equal(flagged, Directory.GetFiles(dir.File("flagged"), "*.png").Length);
            }
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public void Worker_with_a_bad_setting_exits_with_the_setting_named()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "worker", "--Batching:MaxBatchSize=0", "--Model:Path=" + model.Path);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("Batching:MaxBatchSize", r.Stderr, StringComparison.Ordinal);
    }
}

public class ReliabilityCommandTests(CalibratedTinyModel model) : IClassFixture<CalibratedTinyModel>
{
    [Fact]
    public void A_worker_process_killed_hard_mid_stream_loses_nothing()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "faults", "--model", model.Path, "--scenario", "kill", "--messages", "450");
        Assert.True(r.ExitCode == 0, r.All);
        var row = r.Stdout.Split('\n').Single(l => l.StartsWith("| kill |", StringComparison.Ordinal)).Split('|').Select(c => c.Trim()).ToArray();
        // | kill | mode | injection | in | verdict records | lost | duplicates | recovery |
        Assert.Equal("450", row[4]);
        Assert.Equal("0", row[6]);
        Assert.True(int.Parse(row[5], System.Globalization.CultureInfo.InvariantCulture) >= 450);
    }

    [Fact]
    public void A_short_soak_reports_resources_over_time()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "soak", "--model", model.Path, "--minutes", "0.35", "--rate", "100", "--out", dir.File("soak.md"));
        Assert.True(r.ExitCode == 0, r.All);
        var rows = File.ReadAllLines(dir.File("soak.md")).Where(l => l.StartsWith("| ", StringComparison.Ordinal) && char.IsDigit(l[2])).ToArray();
        Assert.True(rows.Length >= 2, string.Join("\n", rows));
        Assert.Contains("RSS first → last window", File.ReadAllText(dir.File("soak.md")), StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_compares_the_pipeline_with_the_bare_encoder_and_samples_worker_memory()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "bench", "--model", model.Path, "--quick", "--section", "pipeline", "memory", "--out", dir.File("bench.md"));
        Assert.True(r.ExitCode == 0, r.All);
        var report = File.ReadAllLines(dir.File("bench.md"));
        var pipeline = report.Single(l => l.StartsWith("| whole pipeline", StringComparison.Ordinal)).Split('|', StringSplitOptions.TrimEntries);
        Assert.True(double.Parse(pipeline[2], System.Globalization.CultureInfo.InvariantCulture) > 0, string.Join("\n", report));
        Assert.Contains(report, l => l.StartsWith("Latency at half the maximum rate", StringComparison.Ordinal) && l.Contains("p95", StringComparison.Ordinal));
        var memoryRows = report.SkipWhile(l => !l.StartsWith("## Worker memory", StringComparison.Ordinal))
            .Where(l => l.StartsWith("| ", StringComparison.Ordinal) && char.IsDigit(l[2])).ToArray();
        Assert.True(memoryRows.Length >= 2, string.Join("\n", report));
        Assert.EndsWith("5,000", memoryRows[^1].Split('|', StringSplitOptions.TrimEntries)[1], StringComparison.Ordinal);
    }
}
