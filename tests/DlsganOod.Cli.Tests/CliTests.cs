using DlsganOod.Core.Data;
using DlsganOod.Core.Imaging;
using DlsganOod.Core.Model;
using DlsganOod.Core.Tests;
using static TorchSharp.torch;

namespace DlsganOod.Cli.Tests;

public sealed class TinyModelFixture : IDisposable
{
    public TinyModelFixture()
    {
        manual_seed(5);
        using var model = new DlsganModel(new ModelConfig { Preset = "test", BaseWidth = 2, LatentDim = 8 }, Preprocessing.Mnist);
        ModelPath = Dir.File("model");
        Checkpoint.Save(model, ModelPath, new CheckpointMetadata { Name = "tiny" });
    }

    public TempDir Dir { get; } = new();
    public string ModelPath { get; }
    public void Dispose() => Dir.Dispose();
}

public class CliTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    private static string WriteIdx(TempDir dir, int count, string name = "images-idx3-ubyte", bool gzip = false)
    {
        var path = dir.File(name);
        Idx.WriteImages(path, Synthetic.Rings(count, seed: 2), gzip);
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Score_on_idx_writes_the_exact_header_and_one_row_per_image(bool gzip)
    {
        using var dir = new TempDir();
        var input = WriteIdx(dir, 13, gzip ? "x-idx3-ubyte.gz" : "x-idx3-ubyte", gzip);
        var r = Cli.Run(dir.Path, "score", "--model", fixture.ModelPath, "--input", input, "--output", dir.File("out/scores.csv"));
        Assert.True(r.ExitCode == 0, r.All);
        var lines = File.ReadAllLines(dir.File("out/scores.csv"));
        Assert.Equal("id,log_likelihood,is_ood", lines[0]);
        Assert.Equal(14, lines.Length);
        Assert.Equal(Enumerable.Range(0, 13).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), lines.Skip(1).Select(l => l.Split(',')[0]));
        Assert.All(lines.Skip(1), l => Assert.True(double.IsFinite(double.Parse(l.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture))));
    }

    [Fact]
    public void Calibrate_then_score_a_folder_flags_by_the_stored_threshold()
    {
        using var dir = new TempDir();
        // Each test calibrates its own copy: the fixture's model stays uncalibrated for the other tests.
        var model = dir.File("model");
        Directory.CreateDirectory(model);
        foreach (var f in Directory.GetFiles(fixture.ModelPath)) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        var held = WriteIdx(dir, 200);
        var cal = Cli.Run(dir.Path, "calibrate", "--model", model, "--data", held, "--fpr", "0.05");
        Assert.True(cal.ExitCode == 0, cal.All);
        Assert.Contains("threshold", cal.Stdout, StringComparison.Ordinal);

        Directory.CreateDirectory(dir.File("pngs"));
        var set = Synthetic.Rings(3, seed: 8);
        for (var i = 0; i < 3; i++)
            File.WriteAllBytes(dir.File($"pngs/img{i}.png"), ImageCodec.EncodePng(new DecodedImage(28, 28, 1, set.Image(i).ToArray())));
        var noise = new byte[28 * 28];
        new Random(1).NextBytes(noise);
        File.WriteAllBytes(dir.File("pngs/noise.png"), ImageCodec.EncodePng(new DecodedImage(28, 28, 1, noise)));
        var r = Cli.Run(dir.Path, "score", "--model", model, "--input", dir.File("pngs"), "--output", dir.File("s.csv"));
        Assert.True(r.ExitCode == 0, r.All);
        var rows = File.ReadAllLines(dir.File("s.csv")).Skip(1).Select(l => l.Split(',')).ToArray();
        Assert.Equal(["img0.png", "img1.png", "img2.png", "noise.png"], rows.Select(x => x[0]).ToArray());
        Assert.All(rows, x => Assert.Contains(x[2], new[] { "true", "false" }));
    }

    [Fact]
    public void Score_without_a_calibration_leaves_is_ood_empty_and_warns()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "score", "--model", fixture.ModelPath, "--input", WriteIdx(dir, 2), "--output", dir.File("s.csv"));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("not calibrated", r.Stderr, StringComparison.Ordinal);
        Assert.EndsWith(",", File.ReadAllLines(dir.File("s.csv"))[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_input_fails_with_its_name()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "score", "--model", fixture.ModelPath, "--input", dir.File("nope.idx"), "--output", dir.File("s.csv"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("nope.idx", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("no such file", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_magic_fails_with_the_file_and_problem()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("bad-idx3-ubyte"), [9, 9, 9, 9, 0, 0, 0, 1]);
        var r = Cli.Run(dir.Path, "score", "--model", fixture.ModelPath, "--input", dir.File("bad-idx3-ubyte"), "--output", dir.File("s.csv"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("bad-idx3-ubyte: wrong magic", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_idx_fails_with_the_problem()
    {
        using var dir = new TempDir();
        var path = WriteIdx(dir, 5);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..500]);
        var r = Cli.Run(dir.Path, "score", "--model", fixture.ModelPath, "--input", path, "--output", dir.File("s.csv"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("truncated", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Unreadable_image_fails_with_the_file_name()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("broken.png"), [0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
        var r = Cli.Run(dir.Path, "score", "--model", fixture.ModelPath, "--input", dir.File("broken.png"), "--output", dir.File("s.csv"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("broken.png", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Corrupt_model_fails_with_the_manifest_error()
    {
        using var dir = new TempDir();
        var model = dir.File("model");
        Directory.CreateDirectory(model);
        foreach (var f in Directory.GetFiles(fixture.ModelPath)) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        File.AppendAllText(Path.Combine(model, Checkpoint.MetadataFile), " ");
        var r = Cli.Run(dir.Path, "score", "--model", model, "--input", WriteIdx(dir, 2), "--output", dir.File("s.csv"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("does not match the manifest", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void No_model_and_no_default_fails_clearly()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, new Dictionary<string, string> { ["DLSGANOOD_MODEL"] = dir.File("none") },
            "score", "--input", WriteIdx(dir, 2), "--output", dir.File("s.csv"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("not found", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_required_option_is_a_usage_error()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "score", "--output", dir.File("s.csv"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--input", r.All, StringComparison.Ordinal);
    }

    [Fact]
    public void Corrupt_writes_idx_and_a_png_grid()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "corrupt", "--input", WriteIdx(dir, 6), "--out", dir.File("c"), "--corruption", "fog", "zigzag");
        Assert.True(r.ExitCode == 0, r.All);
        var fog = Idx.ReadImages(dir.File("c/fog-images-idx3-ubyte"));
        Assert.Equal(6, fog.Count);
        Assert.True(File.Exists(dir.File("c/zigzag.png")));
        var grid = ImageCodec.Decode(File.ReadAllBytes(dir.File("c/samples.png")));
        Assert.True(grid.Height > 3 * 28);
    }

    [Fact]
    public void Unknown_corruption_is_refused()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "corrupt", "--input", WriteIdx(dir, 2), "--out", dir.File("c"), "--corruption", "sparkles");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--corruption: unknown sparkles", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_on_an_idx_file_writes_a_checkpoint_and_bad_settings_name_the_option()
    {
        using var dir = new TempDir();
        var data = WriteIdx(dir, 48);
        var r = Cli.Run(dir.Path, "train", "--data", data, "--out", dir.File("run"), "--epochs", "1", "--base-width", "2", "--latent-dim", "8", "--batch-size", "16", "--validate-every", "0");
        Assert.True(r.ExitCode == 0, r.All);
        using (var loaded = Checkpoint.Load(dir.File("run/checkpoint")))
            Assert.Equal(3, loaded.Metadata.Training!.Steps);
        var bad = Cli.Run(dir.Path, "train", "--data", data, "--out", dir.File("run2"), "--variance-decay", "1.5");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("variance-decay", bad.Stderr, StringComparison.Ordinal);
    }
}

public class EvaluateCommandTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    [Fact]
    public void Evaluate_reports_every_corruption_beside_the_paper_and_writes_json_and_markdown()
    {
        using var dir = new TempDir();
        var r = Cli.Run(dir.Path, "evaluate", "--model", fixture.ModelPath, "--out", dir.File("report"));
        Assert.True(r.ExitCode == 0, r.All);
        var md = File.ReadAllText(dir.File("report/evaluation.md"));
        foreach (var name in DlsganOod.Core.Corruptions.MnistC.Names) Assert.Contains($"| {name} |", md, StringComparison.Ordinal);
        Assert.Contains("| shot_noise | 2000 |", md, StringComparison.Ordinal);
        Assert.Contains("0.8961", md, StringComparison.Ordinal); // the paper's figure beside ours
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(dir.File("report/evaluation.json")));
        var results = json.RootElement.GetProperty("results");
        Assert.True(results.GetArrayLength() >= 15);
        foreach (var row in results.EnumerateArray())
        {
            var auroc = row.GetProperty("metrics").GetProperty("auroc").GetDouble();
            Assert.InRange(auroc, 0, 1);
        }
        if (File.Exists(DlsganOod.Core.Evaluation.OodEvaluation.FashionMnistTestImages))
            Assert.Contains("| fashion_mnist | 10000 |", md, StringComparison.Ordinal);
        // The report: quality table beside the paper's Figure 2, and its pictures.
        var report = File.ReadAllText(dir.File("report/report.md"));
        Assert.Contains("classifier-FID", report, StringComparison.Ordinal);
        Assert.Contains("| Fake SSIM |", report, StringComparison.Ordinal);
        foreach (var png in new[] { "roc-log_likelihood.png", "histograms-log_likelihood.png", "samples.png", "corruptions.png" })
        {
            Assert.True(File.Exists(dir.File("report/" + png)), png);
            Assert.Contains($"]({png})", report, StringComparison.Ordinal);
            Assert.True(DlsganOod.Core.Imaging.ImageCodec.Decode(File.ReadAllBytes(dir.File("report/" + png)), new DlsganOod.Core.Imaging.DecodeLimits(MaxPixels: 100_000_000)).Width > 100);
        }
    }
}
