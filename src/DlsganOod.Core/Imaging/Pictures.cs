using DlsganOod.Core.Data;
using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;

namespace DlsganOod.Core.Imaging;

/// <summary>Model pictures: what the generator makes and how well the encoder inverts it.</summary>
public static class Pictures
{
    public static IReadOnlyList<(string Label, IReadOnlyList<DecodedImage> Images)> RealReconstructedGenerated(DlsganModel model, ImageSet real, int seed)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(real);
        var p = model.Preprocessing;
        var conformed = p.Conform(real);
        var input = p.ToModelInput(conformed, 0, conformed.Count);
        var reconstructed = Inference.Reconstruct(model, input, conformed.Count);
        var generated = Inference.Generate(model, conformed.Count, seed);
        return
        [
            ("real", ToImages(p, input, conformed.Count)),
            ("G(E(x))", ToImages(p, reconstructed, conformed.Count)),
            ("G(z)", ToImages(p, generated, conformed.Count)),
        ];
    }

    public static IReadOnlyList<DecodedImage> ToImages(Preprocessing p, float[] modelSpace, int count)
    {
        ArgumentNullException.ThrowIfNull(p);
        return Enumerable.Range(0, count)
            .Select(i => new DecodedImage(p.InputWidth, p.InputHeight, p.Channels, p.FromModelOutput(modelSpace.AsSpan(i * p.ModelSize, p.ModelSize))))
            .ToArray();
    }
}
