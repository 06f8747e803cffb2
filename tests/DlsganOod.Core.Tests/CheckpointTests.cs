using DlsganOod.Core.Data;
using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;
using static TorchSharp.torch;

namespace DlsganOod.Core.Tests;

public class CheckpointTests
{
    internal static readonly ModelConfig Tiny = new() { Preset = "test", BaseWidth = 2, LatentDim = 8 };

    internal static string SaveTiny(TempDir dir, string name = "ckpt", Action<DlsganModel>? edit = null)
    {
        manual_seed(11);
        using var model = new DlsganModel(Tiny, Preprocessing.Mnist);
        model.SetLatentStatistics(new float[8], Enumerable.Range(1, 8).Select(i => i * 0.25f).ToArray());
        edit?.Invoke(model);
        var path = dir.File(name);
        Checkpoint.Save(model, path, new CheckpointMetadata { Name = "tiny" });
        return path;
    }

    [Fact]
    public void Save_then_load_gives_identical_scores()
    {
        using var dir = new TempDir();
        var images = Synthetic.Rings(6);
        manual_seed(11);
        using var original = new DlsganModel(Tiny, Preprocessing.Mnist);
        original.SetLatentStatistics(new float[8], Enumerable.Range(1, 8).Select(i => i * 0.25f).ToArray());
        var before = Inference.Encode(original, images).LogLikelihood;
        Checkpoint.Save(original, dir.File("c"), new CheckpointMetadata { Name = "tiny" });
        using var loaded = Checkpoint.Load(dir.File("c"));
        Assert.Equal(before, Inference.Encode(loaded.Model, images).LogLikelihood);
        Assert.Equal(Tiny, loaded.Metadata.Config);
        Assert.Equal(original.VarianceArray(), loaded.Model.VarianceArray());
        Assert.Equal(64, loaded.Sha256.Length);
    }

    [Fact]
    public void A_modified_file_fails_the_manifest_check()
    {
        using var dir = new TempDir();
        var path = SaveTiny(dir);
        var enc = Path.Combine(path, Checkpoint.EncoderFile);
        var bytes = File.ReadAllBytes(enc);
        bytes[^10] ^= 0xff;
        File.WriteAllBytes(enc, bytes);
        var ex = Assert.Throws<CheckpointException>(() => Checkpoint.Load(path));
        Assert.Contains("does not match the manifest", ex.Message, StringComparison.Ordinal);
        Assert.Contains(Checkpoint.EncoderFile, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_weights_file_is_refused_even_with_a_matching_manifest()
    {
        using var dir = new TempDir();
        var path = SaveTiny(dir);
        var gen = Path.Combine(path, Checkpoint.GeneratorFile);
        File.WriteAllBytes(gen, File.ReadAllBytes(gen)[..200]);
        Checkpoint.WriteManifest(path);
        var ex = Assert.Throws<CheckpointException>(() => Checkpoint.Load(path));
        Assert.Contains(Checkpoint.GeneratorFile, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_architecture_is_refused()
    {
        using var dir = new TempDir();
        var path = SaveTiny(dir);
        Checkpoint.UpdateMetadata(path, m => m with { Config = m.Config with { BaseWidth = 4 } });
        var ex = Assert.Throws<CheckpointException>(() => Checkpoint.Load(path));
        Assert.Contains("do not match the architecture", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nan_weights_are_refused()
    {
        using var dir = new TempDir();
        var path = SaveTiny(dir, edit: m =>
        {
            using var _ = no_grad();
            m.Encoder.parameters().First().fill_(float.NaN);
        });
        var ex = Assert.Throws<CheckpointException>(() => Checkpoint.Load(path));
        Assert.Contains("NaN", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_manifest_or_folder_is_reported()
    {
        using var dir = new TempDir();
        Assert.Contains("not found", Assert.Throws<CheckpointException>(() => Checkpoint.Load(dir.File("nothing"))).Message, StringComparison.Ordinal);
        var path = SaveTiny(dir);
        File.Delete(Path.Combine(path, Checkpoint.ManifestFile));
        Assert.Contains("missing manifest", Assert.Throws<CheckpointException>(() => Checkpoint.Load(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Non_positive_variance_is_refused()
    {
        using var dir = new TempDir();
        var path = SaveTiny(dir);
        Checkpoint.UpdateMetadata(path, m => m with { Latent = m.Latent with { Variance = m.Latent.Variance.Select(_ => 0f).ToArray() } });
        Assert.Contains("variance", Assert.Throws<CheckpointException>(() => Checkpoint.Load(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Metadata_updates_keep_the_checkpoint_valid()
    {
        using var dir = new TempDir();
        var path = SaveTiny(dir);
        var before = Checkpoint.VerifyManifest(path);
        Checkpoint.UpdateMetadata(path, m => m with { Calibration = new CalibrationRecord { Threshold = -12.5, TargetFpr = 0.01 } });
        using var loaded = Checkpoint.Load(path);
        Assert.Equal(-12.5, loaded.Metadata.Calibration!.Threshold);
        Assert.NotEqual(before, loaded.Sha256);
    }
}
