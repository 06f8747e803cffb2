using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using DlsganOod.Core;
using DlsganOod.Core.Imaging;
using DlsganOod.Core.Scoring;

namespace DlsganOod.Worker.Tests;

public class GateEndToEndTests(TinyModel model) : IClassFixture<TinyModel>
{
    private static readonly string[] VerdictTopics = [GateHarness.Quarantine, GateHarness.Pass, GateHarness.DeadLetter];

    [Fact]
    public async Task Every_message_gets_exactly_one_verdict_matching_a_direct_computation_and_offsets_are_committed()
    {
        using var cluster = GateHarness.Cluster(4);
        var expectedLl = Inference.Encode(LoadModel(), model.Images).LogLikelihood;
        using (var producer = GateHarness.Producer(cluster))
        {
            for (var i = 0; i < model.Images.Count; i++) GateHarness.ProducePng(producer, $"img-{i}", model.Images, i);
            // Raw pixels, announced by content-type, must score exactly like the PNG of the same image.
            producer.Produce(GateHarness.Input, new Message<byte[], byte[]>
            {
                Key = "raw-0"u8.ToArray(), Value = model.Images.Image(0).ToArray(),
                Headers = new Headers { { "content-type", Encoding.UTF8.GetBytes(MessageDecoder.RawContentType(28, 28, 1)) } },
            });
            producer.Produce(GateHarness.Input, new Message<byte[], byte[]> { Key = "empty"u8.ToArray(), Value = [] });
            producer.Produce(GateHarness.Input, new Message<byte[], byte[]> { Key = "garbage"u8.ToArray(), Value = Enumerable.Range(0, 300).Select(i => (byte)(i * 31)).ToArray() });
            producer.Produce(GateHarness.Input, new Message<byte[], byte[]> { Key = "gif"u8.ToArray(), Value = [1, 2, 3], Headers = new Headers { { "content-type", "image/gif"u8.ToArray() } } });
            producer.Flush(TimeSpan.FromSeconds(10));
        }
        var total = model.Images.Count + 4;

        var app = GateHarness.Start(GateHarness.Settings(cluster, model));
        List<OutputRecord> outputs;
        string metricsText;
        try
        {
            outputs = GateHarness.ReadUntil(cluster, [.. VerdictTopics, GateHarness.Alerts], r => r.Count(x => x.Topic != GateHarness.Alerts) >= total && r.Count(x => x.Topic == GateHarness.Alerts) >= r.Count(x => x.Topic == GateHarness.Quarantine), TimeSpan.FromSeconds(60));
            using var http = new HttpClient();
            metricsText = await http.GetStringAsync(GateHarness.MetricsUrl(app) + "/metrics");
            Assert.Equal("ok", await http.GetStringAsync(GateHarness.MetricsUrl(app) + "/healthz"));
            Assert.Equal("ready", await http.GetStringAsync(GateHarness.MetricsUrl(app) + "/readyz"));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        var verdicts = outputs.Where(o => o.Topic != GateHarness.Alerts).ToArray();
        Assert.Equal(total, verdicts.Length);
        Assert.Equal(total, verdicts.Select(v => v.Source).Distinct().Count());
        for (var i = 0; i < model.Images.Count; i++)
        {
            var v = verdicts.Single(o => o.Key == $"img-{i}");
            Assert.Equal(expectedLl[i] < model.Threshold ? GateHarness.Quarantine : GateHarness.Pass, v.Topic);
            Assert.Equal(expectedLl[i], double.Parse(v.Headers[OutputRecords.LogLikelihoodHeader], System.Globalization.CultureInfo.InvariantCulture), 3);
            Assert.Equal("image/png", v.Headers["content-type"]); // original headers travel
            Assert.Equal(ImageCodec.Decode(v.Value).Pixels, model.Images.Image(i).ToArray()); // original value travels
        }
        var raw = verdicts.Single(o => o.Key == "raw-0");
        Assert.Equal(expectedLl[0], double.Parse(raw.Headers[OutputRecords.LogLikelihoodHeader], System.Globalization.CultureInfo.InvariantCulture), 3);
        Assert.Equal("empty", verdicts.Single(o => o.Headers.GetValueOrDefault(OutputRecords.ErrorCodeHeader) == ImageCodec.CodeEmpty).Key);
        var garbage = verdicts.Single(o => o.Key == "garbage");
        Assert.Equal(GateHarness.DeadLetter, garbage.Topic);
        Assert.Equal(ImageCodec.CodeUnreadable, garbage.Headers[OutputRecords.ErrorCodeHeader]);
        Assert.Equal(GateHarness.Input, garbage.Headers[OutputRecords.SourceTopicHeader]);
        Assert.Equal(ImageCodec.CodeUnsupported, verdicts.Single(o => o.Key == "gif").Headers[OutputRecords.ErrorCodeHeader]);

        var alerts = outputs.Where(o => o.Topic == GateHarness.Alerts).ToArray();
        Assert.Equal(verdicts.Count(v => v.Topic == GateHarness.Quarantine), alerts.Length);
        foreach (var a in alerts)
        {
            var e = JsonSerializer.Deserialize<AlertEvent>(a.Value, Json.Options)!;
            Assert.Equal(a.Key, e.Id);
            Assert.True(e.LogLikelihood < e.Threshold);
            Assert.Equal(model.Threshold, e.Threshold, 9);
            Assert.Equal("tiny", e.Model.Name);
            Assert.Equal(64, e.Model.Sha256.Length);
            Assert.Equal(8, e.Evidence.Count);
            Assert.Equal(GateHarness.Input, e.Source.Topic);
            Assert.True(e.Evidence.Zip(e.Evidence.Skip(1)).All(p => p.First.Deviation >= p.Second.Deviation));
        }

        var committed = GateHarness.Committed(cluster, "gate-test", 4);
        Assert.Equal(GateHarness.EndOffsets(cluster, 4), committed);

        Assert.Contains($"dlsgan_ood_messages_consumed_total {total}", metricsText, StringComparison.Ordinal);
        Assert.Contains("dlsgan_ood_messages_dead_lettered_total{code=\"unreadable\"} 1", metricsText, StringComparison.Ordinal);
        Assert.Contains("dlsgan_ood_model_info{name=\"tiny\"", metricsText, StringComparison.Ordinal);
        Assert.Contains("dlsgan_ood_threshold", metricsText, StringComparison.Ordinal);
    }

    [Fact]
    public void A_restarted_gate_in_the_same_group_rereads_nothing()
    {
        using var cluster = GateHarness.Cluster(2);
        using (var producer = GateHarness.Producer(cluster))
        {
            for (var i = 0; i < 10; i++) GateHarness.ProducePng(producer, $"a-{i}", model.Images, i);
            producer.Flush(TimeSpan.FromSeconds(10));
        }
        var settings = GateHarness.Settings(cluster, model, "restart-group");
        RunUntil(cluster, settings, 10);
        using (var producer = GateHarness.Producer(cluster))
        {
            for (var i = 0; i < 5; i++) GateHarness.ProducePng(producer, $"b-{i}", model.Images, i);
            producer.Flush(TimeSpan.FromSeconds(10));
        }
        RunUntil(cluster, settings, 15);
        var verdicts = GateHarness.ReadUntil(cluster, VerdictTopics, r => r.Count >= 16, TimeSpan.FromSeconds(5));
        Assert.Equal(15, verdicts.Count);
        Assert.Equal(15, verdicts.Select(v => v.Key).Distinct().Count());
    }

    [Fact]
    public async Task The_gate_can_decide_on_the_mahalanobis_score_with_its_own_threshold()
    {
        using var cluster = GateHarness.Cluster(2);
        using (var producer = GateHarness.Producer(cluster))
        {
            for (var i = 0; i < model.Images.Count; i++) GateHarness.ProducePng(producer, $"m-{i}", model.Images, i);
            producer.Flush(TimeSpan.FromSeconds(10));
        }
        using var loaded = Core.Model.Checkpoint.Load(model.Path);
        var expected = model.Scores.Score(Core.Scoring.OodScoreModel.Mahalanobis, Core.Scoring.ScoreFeatures.Compute(loaded.Model, model.Images));
        var app = GateHarness.Start(GateHarness.Settings(cluster, model, "maha-group", ("Model:Score", "mahalanobis")));
        List<OutputRecord> verdicts;
        try
        {
            verdicts = GateHarness.ReadUntil(cluster, VerdictTopics, r => r.Count >= model.Images.Count, TimeSpan.FromSeconds(60));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
        Assert.Equal(model.Images.Count, verdicts.Count);
        for (var i = 0; i < model.Images.Count; i++)
        {
            var v = verdicts.Single(o => o.Key == $"m-{i}");
            Assert.Equal("mahalanobis", v.Headers[OutputRecords.ScoreHeader]);
            Assert.Equal(expected[i], double.Parse(v.Headers[OutputRecords.ScoreValueHeader], System.Globalization.CultureInfo.InvariantCulture), 3);
            Assert.Equal(expected[i] > model.MahalanobisThreshold ? GateHarness.Quarantine : GateHarness.Pass, v.Topic);
        }
    }

    [Fact]
    public void A_score_without_calibration_stops_the_start_with_the_reason()
    {
        using var cluster = GateHarness.Cluster(1);
        var ex = Assert.Throws<Core.Model.CheckpointException>(() => WorkerHost.Build([], GateHarness.Settings(cluster, model, "nocal", ("Model:Score", "fused"))));
        Assert.Contains("not calibrated for score 'fused'", ex.Message, StringComparison.Ordinal);
    }

    private static void RunUntil(MockKafkaCluster cluster, Dictionary<string, string?> settings, int verdicts)
    {
        var app = GateHarness.Start(settings);
        try
        {
            GateHarness.ReadUntil(cluster, VerdictTopics, r => r.Count >= verdicts, TimeSpan.FromSeconds(60));
        }
        finally
        {
            app.StopAsync().GetAwaiter().GetResult();
            app.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private Core.Model.DlsganModel LoadModel() => Core.Model.Checkpoint.Load(model.Path).Model;
}
