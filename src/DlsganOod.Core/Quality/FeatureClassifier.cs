using DlsganOod.Core.Data;
using DlsganOod.Core.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DlsganOod.Core.Quality;

/// <summary>
/// A small CNN classifier whose penultimate layer is the feature space for "classifier-FID" and
/// precision/recall. No Inception network can be downloaded here, so the project trains and ships this one;
/// its figures are not comparable to Inception FID. Users can train one on their own labelled data.
/// </summary>
public sealed class FeatureClassifier : nn.Module<Tensor, (Tensor Logits, Tensor Features)>
{
    public const int FeatureDim = 128;
    private readonly Conv2d conv1, conv2, conv3;
    private readonly Linear fc, head;

    public FeatureClassifier(int channels, int classes) : base("feature_classifier")
    {
        conv1 = nn.Conv2d(channels, 32, 3, padding: 1);
        conv2 = nn.Conv2d(32, 64, 3, padding: 1);
        conv3 = nn.Conv2d(64, 128, 3, padding: 1);
        fc = nn.Linear(128 * 4 * 4, FeatureDim);
        head = nn.Linear(FeatureDim, classes);
        RegisterComponents();
    }

    public override (Tensor Logits, Tensor Features) forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.max_pool2d(nn.functional.relu(conv1.forward(x)), 2);
        h = nn.functional.max_pool2d(nn.functional.relu(conv2.forward(h)), 2);
        h = nn.functional.max_pool2d(nn.functional.relu(conv3.forward(h)), 2);
        var features = nn.functional.relu(fc.forward(h.flatten(1)));
        return (head.forward(features).MoveToOuterDisposeScope(), features.MoveToOuterDisposeScope());
    }
}

public sealed record ClassifierMetadata
{
    public string Format { get; init; } = "dlsgan-ood-classifier/1";
    public Preprocessing Preprocessing { get; init; } = new();
    public int Classes { get; init; } = 10;
    public double ValidationAccuracy { get; init; }
    public string DataFingerprint { get; init; } = "";
    public int Epochs { get; init; }
}

/// <summary>Training, saving (weights + classifier.json + manifest) and feature extraction.</summary>
public static class FeatureNetwork
{
    public const string WeightsFile = "classifier.bin";
    public const string MetadataFile = "classifier.json";

    public static (FeatureClassifier Network, ClassifierMetadata Metadata) Train(ImageSet train, ImageSet validation, Preprocessing preprocessing,
        int epochs = 4, int seed = 1, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(preprocessing);
        if (train.Labels is null || validation.Labels is null) throw new ArgumentException("The classifier needs labelled images.");
        manual_seed(seed);
        var classes = train.Labels.Max() + 1;
        var net = new FeatureClassifier(preprocessing.Channels, classes);
        using var x = Tensor(train, preprocessing);
        using var y = tensor(train.Labels.Select(l => (long)l).ToArray());
        using var opt = optim.Adam(net.parameters(), 1e-3);
        var rng = new Random(seed);
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            net.train();
            var order = Enumerable.Range(0, train.Count).ToArray();
            rng.Shuffle(order);
            for (var b = 0; b + 64 <= order.Length; b += 64)
            {
                using var scope = NewDisposeScope();
                using var idx = tensor(order.AsSpan(b, 64).ToArray().Select(i => (long)i).ToArray());
                var (logits, _) = net.forward(x.index_select(0, idx));
                var loss = nn.functional.cross_entropy(logits, y.index_select(0, idx));
                opt.zero_grad();
                loss.backward();
                opt.step();
            }
            log?.Invoke($"classifier epoch {epoch + 1}/{epochs}: validation accuracy {Accuracy(net, validation, preprocessing):P2}");
        }
        var metadata = new ClassifierMetadata
        {
            Preprocessing = preprocessing,
            Classes = classes,
            ValidationAccuracy = Math.Round(Accuracy(net, validation, preprocessing), 4),
            DataFingerprint = train.Fingerprint(),
            Epochs = epochs,
        };
        return (net, metadata);
    }

    public static double Accuracy(FeatureClassifier net, ImageSet images, Preprocessing preprocessing)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(images);
        var logits = Run(net, images, preprocessing, features: false);
        var classes = logits.Length / images.Count;
        var correct = 0;
        for (var i = 0; i < images.Count; i++)
        {
            var best = 0;
            for (var c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
            if (best == images.Labels![i]) correct++;
        }
        return correct / (double)images.Count;
    }

    /// <summary>Features (N × 128) of 8-bit images.</summary>
    public static float[] Features(FeatureClassifier net, ImageSet images, Preprocessing preprocessing) => Run(net, images, preprocessing, features: true);

    /// <summary>Features (N × 128) of model-space images (e.g. generator output), clipped to [-1, 1] first.</summary>
    public static float[] FeaturesOfModelSpace(FeatureClassifier net, float[] modelSpace, int count, Preprocessing p)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(p);
        net.eval();
        var result = new List<float>();
        for (var start = 0; start < count; start += 256)
        {
            var n = Math.Min(256, count - start);
            using var _ = inference_mode();
            using var scope = NewDisposeScope();
            var x = SafeOps.ClampUnit(tensor(modelSpace.AsSpan(start * p.ModelSize, n * p.ModelSize).ToArray(), [n, p.Channels, p.Height, p.Width]));
            result.AddRange(net.forward(x).Features.data<float>().ToArray());
        }
        return result.ToArray();
    }

    private static float[] Run(FeatureClassifier net, ImageSet images, Preprocessing preprocessing, bool features)
    {
        net.eval();
        var conformed = preprocessing.Conform(images);
        var result = new List<float>();
        for (var start = 0; start < conformed.Count; start += 256)
        {
            var n = Math.Min(256, conformed.Count - start);
            using var _ = inference_mode();
            using var scope = NewDisposeScope();
            var x = tensor(preprocessing.ToModelInput(conformed, start, n), [n, preprocessing.Channels, preprocessing.Height, preprocessing.Width]);
            var (logits, f) = net.forward(x);
            result.AddRange((features ? f : logits).data<float>().ToArray());
        }
        return result.ToArray();
    }

    private static Tensor Tensor(ImageSet images, Preprocessing p)
    {
        var conformed = p.Conform(images);
        return tensor(p.ToModelInput(conformed, 0, conformed.Count), [conformed.Count, p.Channels, p.Height, p.Width]);
    }

    public static void Save(FeatureClassifier net, ClassifierMetadata metadata, string directory)
    {
        ArgumentNullException.ThrowIfNull(net);
        Directory.CreateDirectory(directory);
        net.save(Path.Combine(directory, WeightsFile));
        File.WriteAllText(Path.Combine(directory, MetadataFile), Json.Serialize(metadata));
        Checkpoint.WriteManifest(directory);
    }

    public static (FeatureClassifier Network, ClassifierMetadata Metadata) Load(string directory)
    {
        var manifest = Path.Combine(directory, Checkpoint.ManifestFile);
        if (!File.Exists(manifest)) throw new CheckpointException($"{directory}: not a feature network (no manifest)");
        foreach (var (file, sha) in Json.Deserialize<Manifest>(File.ReadAllText(manifest)).Files)
            if (Checkpoint.Sha256File(Path.Combine(directory, file)) != sha)
                throw new CheckpointException($"{Path.Combine(directory, file)}: sha256 does not match the manifest");
        var metadata = Json.Deserialize<ClassifierMetadata>(File.ReadAllText(Path.Combine(directory, MetadataFile)));
        var net = new FeatureClassifier(metadata.Preprocessing.Channels, metadata.Classes);
        try
        {
            net.load(Path.Combine(directory, WeightsFile), strict: true);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            net.Dispose();
            throw new CheckpointException($"{directory}: classifier weights do not load ({ex.Message})", ex);
        }
        net.eval();
        return (net, metadata);
    }

    /// <summary>The shipped MNIST feature network (models/mnist-classifier beside the program or above the working directory).</summary>
    public static string FindDefault()
    {
        const string relative = "models/mnist-classifier";
        var beside = Path.Combine(AppContext.BaseDirectory, relative);
        if (File.Exists(Path.Combine(beside, Checkpoint.ManifestFile))) return beside;
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(Path.Combine(candidate, Checkpoint.ManifestFile))) return candidate;
        }
        throw new FileNotFoundException($"No feature network found ({relative}); train one with `dlsgan-ood train-classifier`.");
    }
}
