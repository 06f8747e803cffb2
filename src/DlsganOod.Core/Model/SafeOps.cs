using TorchSharp;
using static TorchSharp.torch;

namespace DlsganOod.Core.Model;

/// <summary>
/// Operations whose TorchSharp overloads take a number build a native Scalar on the fly and may let the GC
/// finalize it while libtorch still reads it (seen as "Unknown scalar type" crashes). These keep every Scalar
/// in a static field, or use no Scalar at all.
/// </summary>
public static class SafeOps
{
    private static readonly Scalar LeakySlope = 0.2.ToScalar();
    private static readonly Scalar MinusOne = (-1.0).ToScalar();
    private static readonly Scalar One = 1.0.ToScalar();
    private static readonly Scalar Zero = 0.0.ToScalar();

    /// <summary>leaky_relu(x, 0.2) = max(x, 0.2·x).</summary>
    public static Tensor LeakyRelu(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var scaled = x * LeakySlope;
        return x.maximum(scaled);
    }

    /// <summary>softplus(x) = max(x, 0) + log(1 + e^−|x|), stable for large |x|.</summary>
    public static Tensor Softplus(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var scope = NewDisposeScope();
        return (x.relu() + x.abs().neg().exp().log1p()).MoveToOuterDisposeScope();
    }

    public static Tensor ClampUnit(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.clamp(MinusOne, One);
    }

    public static Tensor ClampNonNegative(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.clamp_min(Zero);
    }
}
