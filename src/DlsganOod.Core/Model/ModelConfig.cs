namespace DlsganOod.Core.Model;

/// <summary>
/// Architecture of one DLSGAN. With base width b: encoder levels b, 2b, 4b (two 3×3 convs each, the second
/// widening to min(2·level, 4b)), blurred downsampling, a final 3×3 conv of 8b at 4×4 and two dense heads;
/// generator dense to 8b×4×4, up-blocks of 4b, 2b, b (two 3×3 convs each), 1×1 conv to the image.
/// b = 128 is the reference ("paper"); b = 16 trains on two CPU cores ("cpu").
/// </summary>
public sealed record ModelConfig
{
    public string Preset { get; init; } = "cpu";
    public int BaseWidth { get; init; } = 16;
    public int LatentDim { get; init; } = 256;
    public int Resolution { get; init; } = 32;
    public int Channels { get; init; } = 1;

    public int Levels => (int)Math.Round(Math.Log2(Resolution / 4.0));

    public static ModelConfig FromPreset(string preset, int latentDim = 256, int channels = 1, int resolution = 32) => preset switch
    {
        "paper" => new ModelConfig { Preset = "paper", BaseWidth = 128, LatentDim = latentDim, Channels = channels, Resolution = resolution },
        "cpu" => new ModelConfig { Preset = "cpu", BaseWidth = 16, LatentDim = latentDim, Channels = channels, Resolution = resolution },
        _ => throw new ArgumentException($"Unknown preset '{preset}' (expected 'paper' or 'cpu').", nameof(preset)),
    };

    public void Validate()
    {
        if (BaseWidth < 1) throw new InvalidDataException($"model: base width must be positive, not {BaseWidth}");
        if (LatentDim < 1) throw new InvalidDataException($"model: latent dimension must be positive, not {LatentDim}");
        if (Channels is not (1 or 3)) throw new InvalidDataException($"model: channels must be 1 or 3, not {Channels}");
        if (Resolution < 8 || (Resolution & (Resolution - 1)) != 0)
            throw new InvalidDataException($"model: resolution must be a power of two ≥ 8, not {Resolution}");
    }

    /// <summary>Channel widths of the encoder levels, highest resolution first.</summary>
    public int[] EncoderWidths() => Enumerable.Range(0, Levels).Select(i => Math.Min(BaseWidth << i, 4 * BaseWidth)).ToArray();

    /// <summary>Channel widths of the generator up-blocks, lowest resolution first.</summary>
    public int[] GeneratorWidths() => Enumerable.Range(0, Levels).Select(i => Math.Min(BaseWidth << (Levels - 1 - i), 4 * BaseWidth)).ToArray();

    public int TopWidth => 8 * BaseWidth;
}
