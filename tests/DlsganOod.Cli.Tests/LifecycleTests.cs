using System.Collections.Concurrent;
using System.Text;
using Confluent.Kafka;
using DlsganOod.Core.Data;
using DlsganOod.Core.Imaging;
using DlsganOod.Core.Model;
using DlsganOod.Core.Registry;
using DlsganOod.Core.Tests;
using DlsganOod.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace DlsganOod.Cli.Tests;

/// <summary>Two different tiny checkpoints to publish as versions.</summary>
public sealed class TwoTinyModels : IDisposable
{
    public TwoTinyModels()
    {
        foreach (var (seed, name) in new[] { (31, "a"), (32, "b") })
        {
            manual_seed(seed);
            using var model = new DlsganModel(new ModelConfig { Preset = "test", BaseWidth = 2, LatentDim = 8 }, Preprocessing.Mnist);
            Checkpoint.Save(model, Dir.File(name), new CheckpointMetadata { Name = name, Calibration = new CalibrationRecord { Threshold = 0 } });
        }
    }

    public TempDir Dir { get; } = new();
    public string A => Dir.File("a");
    public string B => Dir.File("b");
    public void Dispose() => Dir.Dispose();
}

public class LifecycleTests(TwoTinyModels models) : IClassFixture<TwoTinyModels>
{
    [Fact]
    public async Task Publish_promote_hot_swap_under_load_shadow_rollback_and_refusals()
    {
        using var dir = new TempDir();
        using var cluster = new MockKafkaCluster();
        cluster.CreateTopics(4, "images");
        cluster.CreateTopics(1, ModelControl.DefaultTopic);
        cluster.CreateTopics(2, "dlsgan-ood.alerts", "dlsgan-ood.quarantine", "dlsgan-ood.dead-letter", "dlsgan-ood.pass");
        var registry = dir.File("registry");
        CliResult Run(params string[] args) => Cli.Run(dir.Path, [.. args, "--registry", registry, "--bootstrap-servers", cluster.BootstrapServers]);
        CliResult Ok(params string[] args)
        {
            var r = Run(args);
            Assert.True(r.ExitCode == 0, string.Join(' ', args) + "\n" + r.All);
            return r;
        }

        Ok("publish", "--model", models.A, "--skip-evaluation");
        Ok("publish", "--model", models.B, "--skip-evaluation");
        var reg = new ModelRegistry(registry);
        Assert.Equal(["v1", "v2"], reg.Versions("default"));
        var v1 = reg.Open("default", "v1");
        var v2 = reg.Open("default", "v2");
        Assert.NotEqual(v1.Record.Calibration!.Threshold, v2.Record.Calibration!.Threshold);
        // Versions are immutable: their files carry no write permission (root could still write; the manifest would tell).
        if (!OperatingSystem.IsWindows())
        {
            foreach (var f in Directory.GetFiles(v1.Path))
                Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(f) & (UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite));
        }
        Ok("models", "promote", "v1");

        // A gate that starts now serves the latest promoted version, not its configured fallback.
        var app = WorkerHost.Build([], new Dictionary<string, string?>
        {
            ["Kafka:BootstrapServers"] = cluster.BootstrapServers, ["Kafka:InputTopics:0"] = "images", ["Kafka:PassTopic"] = "dlsgan-ood.pass",
            ["Kafka:SessionTimeoutMs"] = "3000", ["Model:Path"] = models.B, ["Metrics:Port"] = "0", ["Metrics:BindAddress"] = "127.0.0.1",
            ["Batching:MaxBatchSize"] = "16", ["Batching:MaxWaitMs"] = "20",
        }, l => l.SetMinimumLevel(LogLevel.Warning));
        var worker = app.Services.GetRequiredService<GateWorker>();
        var provider = app.Services.GetRequiredService<ModelProvider>();
        var listener = app.Services.GetRequiredService<ModelControlListener>();
        var metrics = app.Services.GetRequiredService<GateMetrics>();
        var verdicts = new ConcurrentBag<Verdict>();
        var batches = new ConcurrentQueue<(long Batch, string Version, DateTimeOffset At)>();
        worker.Completed += verdicts.Add;
        worker.BatchScored += (n, v, _) => batches.Enqueue((n, v, DateTimeOffset.UtcNow));
        await app.StartAsync();
        Assert.Equal("v1", provider.Current!.Identity.Version);
        Assert.Equal(v1.Record.Calibration.Threshold, provider.Current.Threshold);

        // Continuous load while v2 is promoted.
        var images = Synthetic.Rings(50, seed: 12);
        var payloads = Enumerable.Range(0, 50).Select(i => ImageCodec.EncodePng(new DecodedImage(28, 28, 1, images.Image(i).ToArray()))).ToArray();
        var sent = 0;
        using var stop = new CancellationTokenSource();
        var load = Task.Run(async () =>
        {
            using var p = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers, LingerMs = 1 }).Build();
            while (!stop.IsCancellationRequested)
            {
                p.Produce("images", new Message<byte[], byte[]> { Key = Encoding.UTF8.GetBytes($"m{sent}"), Value = payloads[sent % 50], Headers = new Headers { { "content-type", "image/png"u8.ToArray() } } });
                sent++;
                await Task.Delay(8);
            }
            p.Flush(TimeSpan.FromSeconds(10));
        });
        await Task.Delay(2500);
        Ok("models", "promote", "v2");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (provider.Current!.Identity.Version != "v2" && DateTime.UtcNow < deadline) await Task.Delay(50);
        await Task.Delay(1500);
        stop.Cancel();
        await load;
        deadline = DateTime.UtcNow.AddSeconds(30);
        while (verdicts.Count < sent && DateTime.UtcNow < deadline) await Task.Delay(100);

        Assert.Equal("v2", provider.Current!.Identity.Version);
        Assert.Equal(v2.Record.Calibration.Threshold, provider.Current.Threshold);
        // No input lost, none scored twice.
        Assert.Equal(sent, verdicts.Count);
        Assert.Equal(sent, verdicts.Select(v => v.Message.Source.ToString()).Distinct().Count());
        // No batch scored by two versions; every output carries the version that scored it.
        Assert.All(verdicts.GroupBy(v => v.Batch), g => Assert.Single(g.Select(v => v.Model!.Version).Distinct()));
        var swapAt = provider.LastSwapAt!.Value;
        var lateV1Batches = batches.Where(b => b.Version == "v1" && b.At > swapAt).Select(b => b.Batch).Distinct().Count();
        Assert.True(lateV1Batches <= 1, $"{lateV1Batches} batches scored by v1 after the swap");
        var afterEvent = batches.Where(b => b.Version == "v1" && b.At > listener.LastEventReceivedAt!.Value).Select(b => b.Batch).Distinct().Count();
        Assert.True(afterEvent <= 2, $"{afterEvent} v1 batches after the promotion event arrived");
        // Per partition the version only moves forward.
        foreach (var partition in verdicts.GroupBy(v => v.Message.Source.Partition.Value))
        {
            var ordered = partition.OrderBy(v => v.Message.Source.Offset.Value).Select(v => v.Model!.Version).ToArray();
            Assert.Equal(ordered.OrderBy(v => v, StringComparer.Ordinal), ordered);
        }

        // A corrupt version is refused and the served model stays.
        Ok("publish", "--model", models.A, "--skip-evaluation");
        var v3 = reg.Open("default", "v3");
        var encoder = Path.Combine(v3.Path, Checkpoint.EncoderFile);
        File.SetAttributes(encoder, FileAttributes.Normal);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(encoder, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllBytes(encoder, File.ReadAllBytes(encoder)[..1000]);
        var refused = Run("models", "promote", "v3");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("does not match the manifest", refused.Stderr, StringComparison.Ordinal);
        var failures = metrics.ModelLoadFailures.Value;
        ModelControl.Announce(new ClientConfig { BootstrapServers = cluster.BootstrapServers }, ModelControl.DefaultTopic,
            new ModelEvent("default", "v3", v3.Path, v3.Sha256, 0, ModelEvent.Promoted, false, DateTimeOffset.UtcNow));
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (metrics.ModelLoadFailures.Value == failures && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(failures + 1, metrics.ModelLoadFailures.Value);
        Assert.Equal("v2", provider.Current!.Identity.Version);

        // Shadow: v1 scores the same inputs beside v2 and only metrics come out.
        Ok("models", "retire", "v3");
        Ok("models", "shadow", "v1");
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (provider.Shadow is null && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal("v1", provider.Shadow!.Identity.Version);
        var shadowInputs = new List<InputMessage>();
        worker.Completed += v => { lock (shadowInputs) shadowInputs.Add(v.Message); };
        using (var p = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers }).Build())
        {
            for (var i = 0; i < 50; i++) p.Produce("images", new Message<byte[], byte[]> { Key = Encoding.UTF8.GetBytes($"s{i}"), Value = payloads[i], Headers = new Headers { { "content-type", "image/png"u8.ToArray() } } });
            p.Flush(TimeSpan.FromSeconds(10));
        }
        deadline = DateTime.UtcNow.AddSeconds(20);
        // Shadow scoring happens before the outputs are acknowledged, so wait for both.
        int Completed()
        {
            lock (shadowInputs) return shadowInputs.Count;
        }
        while ((metrics.ShadowScored.Value < 50 || Completed() < 50) && DateTime.UtcNow < deadline) await Task.Delay(50);
        var engine = new ScoringEngine(DecodeLimits.Default);
        List<InputMessage> inputs;
        lock (shadowInputs) inputs = shadowInputs.ToList();
        var served = engine.Score(provider.Current!, inputs);
        var shadowed = engine.Score(provider.Shadow!, inputs);
        var agreement = served.Zip(shadowed).Count(p => p.First.Kind == p.Second.Kind) / (double)inputs.Count;
        var shadowRate = shadowed.Count(v => v.Kind == VerdictKind.Ood) / (double)inputs.Count;
        Assert.Equal(50, metrics.ShadowScored.Value);
        Assert.Equal(50, inputs.Count);
        Assert.Equal(agreement, metrics.ShadowAgreement.WithLabels("v1").Value, 9);
        Assert.Equal(shadowRate, metrics.ShadowOodRate.WithLabels("v1").Value, 9);

        // Rollback restores the previous promoted version with its own threshold.
        Ok("models", "rollback");
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (provider.Current!.Identity.Version != "v1" && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal("v1", provider.Current!.Identity.Version);
        Assert.Equal(v1.Record.Calibration.Threshold, provider.Current.Threshold);

        // Refusals: retired, unknown.
        Assert.Contains("retired", Run("models", "promote", "v3").Stderr, StringComparison.Ordinal);
        Assert.Contains("unknown version", Run("models", "promote", "v9").Stderr, StringComparison.Ordinal);
        var list = Ok("models", "list");
        Assert.Contains("serving", list.Stdout, StringComparison.Ordinal);

        await app.StopAsync();
        await app.DisposeAsync();
    }
}
