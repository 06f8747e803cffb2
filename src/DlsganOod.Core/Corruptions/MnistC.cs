using DlsganOod.Core.Data;

namespace DlsganOod.Core.Corruptions;

/// <summary>
/// The 15 corruptions of MNIST-C (Mu &amp; Gilmer 2019) at the severities of the published dataset, written
/// from their definitions: the same parameters, interpolation orders, boundary modes and clipping.
/// Randomness comes from one generator per (seed, corruption, image index), so every image's corruption is
/// reproducible on its own, whatever the order or batching.
/// Images are grey, values in [0, 1] internally; output is 8-bit (truncated, as a cast of the float output).
/// </summary>
public static class MnistC
{
    public static readonly string[] Names =
    [
        "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate", "brightness",
        "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges",
    ];

    /// <summary>The ten corruptions the paper reports, with its AUROC.</summary>
    public static readonly IReadOnlyDictionary<string, double> PaperAuroc = new Dictionary<string, double>
    {
        ["shot_noise"] = 0.8961, ["impulse_noise"] = 1.0000, ["glass_blur"] = 0.9914, ["motion_blur"] = 0.9995,
        ["stripe"] = 1.0000, ["fog"] = 1.0000, ["spatter"] = 0.9785, ["dotted_line"] = 0.9958,
        ["zigzag"] = 0.9989, ["canny_edges"] = 0.9999,
    };

    public static ImageSet Apply(string name, ImageSet images, int seed)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Channels != 1) throw new ArgumentException("MNIST-C corruptions are defined on grey images.", nameof(images));
        var id = Array.IndexOf(Names, name);
        if (id < 0) throw new ArgumentException($"Unknown corruption '{name}'. Known: {string.Join(", ", Names)}.", nameof(name));
        var (h, w) = (images.Height, images.Width);
        var output = new byte[images.Pixels.Length];
        Parallel.For(0, images.Count, i =>
        {
            var rng = new Rng(seed, id, i);
            var img = new double[h * w];
            var src = images.Image(i);
            for (var p = 0; p < img.Length; p++) img[p] = src[p] / 255.0;
            var result = ApplyOne(name, new Plane(img, h, w), rng);
            for (var p = 0; p < img.Length; p++)
                output[i * h * w + p] = (byte)Math.Clamp(Math.Floor(result.Data[p] * 255.0 + 1e-9), 0, 255);
        });
        return new ImageSet(images.Count, h, w, 1, output, images.Labels, images.Ids);
    }

    private static Plane ApplyOne(string name, Plane x, Rng rng) => name switch
    {
        "shot_noise" => ShotNoise(x, rng, 3),
        "impulse_noise" => ImpulseNoise(x, rng, 0.17),
        "glass_blur" => GlassBlur(x, rng, 0.7, 1, 2),
        "motion_blur" => MotionBlur(x, rng, 10, 3),
        "shear" => Warp(x, Shear(0.4 * rng.Sign())),
        "scale" => Warp(x, Scale(1 / 0.7)),
        "rotate" => Warp(x, Rotation(0.4 * rng.Sign())),
        "brightness" => x.Map(v => Math.Clamp(v + 0.5, 0, 1)),
        "translate" => Warp(x, Translation(3 * rng.Sign(), 3 * rng.Sign())),
        "stripe" => Stripe(x),
        "fog" => Fog(x, rng, 3.0, 1.4),
        "spatter" => Spatter(x, rng),
        "dotted_line" => DottedLine(x, rng),
        "zigzag" => Zigzag(x, rng),
        "canny_edges" => Canny(x, 1.0, 0.1, 0.2),
        _ => throw new ArgumentException($"Unknown corruption '{name}'.", nameof(name)),
    };

    // ---- noise ----

    /// <summary>Poisson noise with c photons at full intensity: x ← Poisson(c·x)/c. Black stays black.</summary>
    internal static Plane ShotNoise(Plane x, Rng rng, double c) => x.Map(v => Math.Clamp(rng.Poisson(v * c) / c, 0, 1));

    /// <summary>Salt and pepper: each pixel with probability <paramref name="amount"/> becomes 0 or 1, evenly.</summary>
    internal static Plane ImpulseNoise(Plane x, Rng rng, double amount) => x.Map(v =>
    {
        var flip = rng.NextDouble() <= amount;
        var salt = rng.NextDouble() <= 0.5;
        return flip ? (salt ? 1 : 0) : v;
    });

    // ---- blur ----

    /// <summary>Gaussian blur, local pixel shuffling, Gaussian blur again (ImageNet-C/MNIST-C glass blur).</summary>
    internal static Plane GlassBlur(Plane x, Rng rng, double sigma, int maxDelta, int iterations)
    {
        var blurred = GaussianFilter(x, sigma);
        // The reference casts to uint8 (truncating) between the two blurs.
        var q = blurred.Map(v => Math.Floor(Math.Clamp(v, 0, 1) * 255) / 255);
        var d = (double[])q.Data.Clone();
        for (var it = 0; it < iterations; it++)
            for (var hh = x.Height - maxDelta; hh > maxDelta; hh--)
                for (var ww = x.Width - maxDelta; ww > maxDelta; ww--)
                {
                    if (!rng.Coin()) continue;
                    // randint(-δ, δ) excludes δ: offsets lie in [-δ, δ-1].
                    var dx = rng.Int(-maxDelta, maxDelta);
                    var dy = rng.Int(-maxDelta, maxDelta);
                    var hp = hh + dy;
                    var wp = ww + dx;
                    if (hh >= x.Height || ww >= x.Width || hp < 0 || wp < 0 || hp >= x.Height || wp >= x.Width) continue;
                    (d[hh * x.Width + ww], d[hp * x.Width + wp]) = (d[hp * x.Width + wp], d[hh * x.Width + ww]);
                }
        return GaussianFilter(new Plane(d, x.Height, x.Width), sigma).Map(v => Math.Clamp(v, 0, 1));
    }

    /// <summary>
    /// ImageMagick's motion blur: a one-sided Gaussian (radius r, σ) along a random angle in [-45°, 45°),
    /// each output pixel averaging the pixels behind it; edge pixels extend beyond the border.
    /// </summary>
    internal static Plane MotionBlur(Plane x, Rng rng, double radius, double sigma)
    {
        var angle = rng.Uniform(-45, 45) * Math.PI / 180;
        var width = 2 * (int)Math.Ceiling(radius) + 1;
        var kernel = new double[width];
        for (var i = 0; i < width; i++) kernel[i] = Math.Exp(-(double)i * i / (2 * sigma * sigma));
        var total = kernel.Sum();
        var offX = new int[width];
        var offY = new int[width];
        for (var i = 0; i < width; i++)
        {
            offX[i] = (int)Math.Ceiling(i * Math.Cos(angle) - 0.5);
            offY[i] = (int)Math.Ceiling(i * Math.Sin(angle) - 0.5);
        }
        var result = new double[x.Data.Length];
        for (var r = 0; r < x.Height; r++)
            for (var c = 0; c < x.Width; c++)
            {
                double acc = 0;
                for (var i = 0; i < width; i++)
                    acc += kernel[i] * x.AtClamped(r + offY[i], c + offX[i]);
                // Through an 8-bit PNG round trip in the reference.
                result[r * x.Width + c] = Math.Round(Math.Clamp(acc / total, 0, 1) * 255) / 255;
            }
        return new Plane(result, x.Height, x.Width);
    }

    // ---- geometry (skimage.transform.warp with an inverse affine map, bilinear, zero outside) ----

    /// <summary>Inverse map [a1 a2 a3; b1 b2 b3] from output (col, row) to input, centred on the image centre.</summary>
    internal readonly record struct Affine(double A1, double A2, double B1, double B2, double Tx = double.NaN, double Ty = double.NaN);

    internal static Affine Shear(double s) => new(1, -Math.Sin(s), 0, Math.Cos(s));
    internal static Affine Rotation(double r) => new(Math.Cos(r), -Math.Sin(r), Math.Sin(r), Math.Cos(r));
    internal static Affine Scale(double s) => new(s, 0, 0, s);
    internal static Affine Translation(double dx, double dy) => new(1, 0, 0, 1, dx, dy);

    internal static Plane Warp(Plane x, Affine m)
    {
        var cx = (x.Width - 1) / 2.0;
        var cy = (x.Height - 1) / 2.0;
        // MNIST-C keeps the centre (13.5, 13.5) fixed for shear, rotation and scale.
        var tx = double.IsNaN(m.Tx) ? cx * (1 - m.A1) - cy * m.A2 : m.Tx;
        var ty = double.IsNaN(m.Ty) ? cy * (1 - m.B2) - cx * m.B1 : m.Ty;
        var result = new double[x.Data.Length];
        for (var r = 0; r < x.Height; r++)
            for (var c = 0; c < x.Width; c++)
            {
                var sc = m.A1 * c + m.A2 * r + tx;
                var sr = m.B1 * c + m.B2 * r + ty;
                result[r * x.Width + c] = Math.Clamp(x.Bilinear(sr, sc), 0, 1);
            }
        return new Plane(result, x.Height, x.Width);
    }

    // ---- overlays ----

    /// <summary>Inverts the outer quarter columns on each side (columns 0–6 and 21–27 of 28).</summary>
    internal static Plane Stripe(Plane x)
    {
        var d = (double[])x.Data.Clone();
        var band = x.Width / 4;
        for (var r = 0; r < x.Height; r++)
            for (var c = 0; c < x.Width; c++)
                if (c < band || c >= x.Width - band) d[r * x.Width + c] = 1 - d[r * x.Width + c];
        return new Plane(d, x.Height, x.Width);
    }

    /// <summary>Diamond–square plasma (256², wibble decay 1.4) cropped to the image, added with weight c, rescaled.</summary>
    internal static Plane Fog(Plane x, Rng rng, double c, double wibbleDecay)
    {
        var fractal = PlasmaFractal(256, wibbleDecay, rng);
        var max = x.Data.Max();
        var result = new double[x.Data.Length];
        for (var r = 0; r < x.Height; r++)
            for (var col = 0; col < x.Width; col++)
            {
                var v = x.At(r, col) + c * fractal[r * 256 + col];
                result[r * x.Width + col] = Math.Clamp(v * max / (max + c), 0, 1);
            }
        return new Plane(result, x.Height, x.Width);
    }

    internal static double[] PlasmaFractal(int size, double wibbleDecay, Rng rng)
    {
        var map = new double[size * size];
        double wibble = 100;
        var step = size;
        int I(int r, int c) => ((r % size + size) % size) * size + (c % size + size) % size;
        while (step >= 2)
        {
            var half = step / 2;
            // squares: centre of each square = mean of its 4 corners + noise
            for (var r = 0; r < size; r += step)
                for (var c = 0; c < size; c += step)
                {
                    var sum = map[I(r, c)] + map[I(r + step, c)] + map[I(r, c + step)] + map[I(r + step, c + step)];
                    map[I(r + half, c + half)] = sum / 4 + wibble * rng.Uniform(-wibble, wibble);
                }
            // diamonds: edge midpoints = mean of their 4 neighbours (wrapping) + noise
            for (var r = 0; r < size; r += step)
                for (var c = 0; c < size; c += step)
                {
                    var top = map[I(r, c)] + map[I(r, c + step)] + map[I(r + half, c + half)] + map[I(r - half, c + half)];
                    map[I(r, c + half)] = top / 4 + wibble * rng.Uniform(-wibble, wibble);
                    var left = map[I(r, c)] + map[I(r + step, c)] + map[I(r + half, c + half)] + map[I(r + half, c - half)];
                    map[I(r + half, c)] = left / 4 + wibble * rng.Uniform(-wibble, wibble);
                }
            step /= 2;
            wibble /= wibbleDecay;
        }
        var min = map.Min();
        var max = map.Max() - min;
        for (var i = 0; i < map.Length; i++) map[i] = (map[i] - min) / max;
        return map;
    }

    /// <summary>Mud spatter (severity 4): thresholded blurred noise, softened, painted in grey 63.</summary>
    internal static Plane Spatter(Plane x, Rng rng)
    {
        var liquid = new Plane(x.Data.Select(_ => rng.Normal(0.65, 0.3)).ToArray(), x.Height, x.Width);
        liquid = GaussianFilter(liquid, 1).Map(v => v < 0.65 ? 0 : v);
        var mask = GaussianFilter(liquid.Map(v => v > 0.65 ? 1 : 0), 1.5).Map(v => v < 0.8 ? 0 : v);
        var result = new double[x.Data.Length];
        for (var i = 0; i < result.Length; i++)
            result[i] = Math.Clamp(x.Data[i] * (1 - mask.Data[i]) + 63 / 255.0 * mask.Data[i], 0, 1);
        return new Plane(result, x.Height, x.Width);
    }

    /// <summary>A line across the image with every other pair of columns removed.</summary>
    internal static Plane DottedLine(Plane x, Rng rng)
    {
        var last = x.Width - 1;
        var r0 = rng.Int(0, last);
        var r1 = rng.Int(0, last);
        var line = LineFromPoints(0, r0, last, r1, x.Height, x.Width);
        for (var c = 0; c < x.Width; c++)
            if ((c / 2) % 2 == 0)
                for (var r = 0; r < x.Height; r++) line[r * x.Width + c] = 0;
        return new Plane(x.Data.Select((v, i) => Math.Clamp(v + line[i], 0, 1)).ToArray(), x.Height, x.Width);
    }

    /// <summary>A zigzag of 2-px segments along a slightly tilted line from column 2 to 25.</summary>
    internal static Plane Zigzag(Plane x, Rng rng)
    {
        const double a = 2, b = 2;
        const double c0 = 2, c1 = 25;
        var r0 = (double)rng.Int(0, x.Width - 1);
        var r1 = r0 + rng.Int(-5, 5);
        var theta = Math.Atan((r1 - r0) / (c1 - c0));
        var d = (c1 - c0) / Math.Cos(theta);
        var points = new List<(double C, double R)> { (0, 0) };
        double ri = 0;
        for (var i = 0; i < (int)Math.Floor((d - a) / (2 * a)) + 1; i++)
        {
            var ci = (2 * i + 1) * a;
            ri = (i % 2 == 0 ? 1 : -1) * b;
            points.Add((ci, ri));
        }
        var maxC = 2 * a * Math.Floor(d / (2 * a));
        if (d != maxC) points.Add((d, ri / (2 * (d - maxC))));
        var rotated = points.Select(p => (C: Math.Cos(theta) * p.C - Math.Sin(theta) * p.R + c0, R: Math.Sin(theta) * p.C + Math.Cos(theta) * p.R + r0)).ToArray();
        var data = (double[])x.Data.Clone();
        for (var i = 1; i < rotated.Length; i++)
        {
            var seg = LineFromPoints(rotated[i - 1].C, rotated[i - 1].R, rotated[i].C, rotated[i].R, x.Height, x.Width);
            for (var p = 0; p < data.Length; p++) data[p] = Math.Clamp(data[p] + seg[p], 0, 1);
        }
        return new Plane(data, x.Height, x.Width);
    }

    /// <summary>MNIST-C's anti-aliased line: intensity log(1 − dist/2.3) + 1 within 2.3 px, between the two columns.</summary>
    internal static double[] LineFromPoints(double c0, double r0, double c1, double r1, int height, int width)
    {
        var result = new double[height * width];
        if (c1 == c0) return result;
        var m = (r1 - r0) / (c1 - c0);
        var left = (int)Math.Floor(c0);
        var right = (int)Math.Ceiling(c1);
        for (var r = 0; r < height; r++)
            for (var c = 0; c < width; c++)
            {
                if (c < left || c >= right) continue;
                var dist = Math.Min(Math.Abs(r - (m * (c - c0) + r0)), 2.3 - 1e-10);
                result[r * width + c] = Math.Clamp(Math.Log(1 - dist / 2.3) + 1, 0, 1);
            }
        return result;
    }

    // ---- edges ----

    /// <summary>Canny edge map (as skimage.feature.canny): Gaussian σ, Sobel, non-maximum suppression, hysteresis.</summary>
    internal static Plane Canny(Plane x, double sigma, double low, double high)
    {
        var (h, w) = (x.Height, x.Width);
        // skimage smooths with zero padding and divides by the smoothed mask to undo the border darkening.
        var smoothed = GaussianFilter(x, sigma, constantZero: true);
        var ones = GaussianFilter(new Plane(Enumerable.Repeat(1.0, h * w).ToArray(), h, w), sigma, constantZero: true);
        smoothed = new Plane(smoothed.Data.Select((v, i) => v / ones.Data[i]).ToArray(), h, w);
        var gx = new double[h * w];
        var gy = new double[h * w];
        var mag = new double[h * w];
        for (var r = 0; r < h; r++)
            for (var c = 0; c < w; c++)
            {
                double S(int rr, int cc) => smoothed.AtClamped(rr, cc);
                // scipy.ndimage.sobel (reflect mode ≈ clamp for a 3×3 stencil)
                gx[r * w + c] = (S(r - 1, c + 1) + 2 * S(r, c + 1) + S(r + 1, c + 1)) - (S(r - 1, c - 1) + 2 * S(r, c - 1) + S(r + 1, c - 1));
                gy[r * w + c] = (S(r + 1, c - 1) + 2 * S(r + 1, c) + S(r + 1, c + 1)) - (S(r - 1, c - 1) + 2 * S(r - 1, c) + S(r - 1, c + 1));
                mag[r * w + c] = Math.Sqrt(gx[r * w + c] * gx[r * w + c] + gy[r * w + c] * gy[r * w + c]);
            }
        var nms = new double[h * w];
        for (var r = 1; r < h - 1; r++)
            for (var c = 1; c < w - 1; c++)
            {
                var i = r * w + c;
                if (mag[i] == 0) continue;
                var angle = Math.Atan2(gy[i], gx[i]) * 180 / Math.PI;
                if (angle < 0) angle += 180;
                double n1, n2;
                if (angle < 22.5 || angle >= 157.5) { n1 = mag[i - 1]; n2 = mag[i + 1]; }
                else if (angle < 67.5) { n1 = mag[i - w - 1]; n2 = mag[i + w + 1]; }
                else if (angle < 112.5) { n1 = mag[i - w]; n2 = mag[i + w]; }
                else { n1 = mag[i - w + 1]; n2 = mag[i + w - 1]; }
                if (mag[i] >= n1 && mag[i] >= n2) nms[i] = mag[i];
            }
        var edges = new double[h * w];
        var stack = new Stack<int>();
        for (var i = 0; i < nms.Length; i++)
            if (nms[i] >= high && edges[i] == 0) { edges[i] = 1; stack.Push(i); }
        while (stack.Count > 0)
        {
            var i = stack.Pop();
            int r = i / w, c = i % w;
            for (var dr = -1; dr <= 1; dr++)
                for (var dc = -1; dc <= 1; dc++)
                {
                    int rr = r + dr, cc = c + dc;
                    if (rr < 0 || cc < 0 || rr >= h || cc >= w) continue;
                    var j = rr * w + cc;
                    if (edges[j] == 0 && nms[j] >= low) { edges[j] = 1; stack.Push(j); }
                }
        }
        return new Plane(edges, h, w);
    }

    // ---- helpers ----

    /// <summary>scipy.ndimage.gaussian_filter: separable, truncate 4σ, 'nearest' edges (or zero padding).</summary>
    internal static Plane GaussianFilter(Plane x, double sigma, bool constantZero = false)
    {
        var radius = (int)(4.0 * sigma + 0.5);
        var k = new double[2 * radius + 1];
        for (var i = -radius; i <= radius; i++) k[i + radius] = Math.Exp(-0.5 * i * i / (sigma * sigma));
        var sum = k.Sum();
        for (var i = 0; i < k.Length; i++) k[i] /= sum;
        var (h, w) = (x.Height, x.Width);
        var tmp = new double[h * w];
        for (var r = 0; r < h; r++)
            for (var c = 0; c < w; c++)
            {
                double acc = 0;
                for (var i = -radius; i <= radius; i++)
                {
                    var cc = c + i;
                    if (constantZero && (cc < 0 || cc >= w)) continue;
                    acc += k[i + radius] * x.Data[r * w + Math.Clamp(cc, 0, w - 1)];
                }
                tmp[r * w + c] = acc;
            }
        var result = new double[h * w];
        for (var r = 0; r < h; r++)
            for (var c = 0; c < w; c++)
            {
                double acc = 0;
                for (var i = -radius; i <= radius; i++)
                {
                    var rr = r + i;
                    if (constantZero && (rr < 0 || rr >= h)) continue;
                    acc += k[i + radius] * tmp[Math.Clamp(rr, 0, h - 1) * w + c];
                }
                result[r * w + c] = acc;
            }
        return new Plane(result, h, w);
    }
}

/// <summary>A grey image as doubles, row-major.</summary>
internal readonly record struct Plane(double[] Data, int Height, int Width)
{
    public double At(int r, int c) => Data[r * Width + c];
    public double AtClamped(int r, int c) => Data[Math.Clamp(r, 0, Height - 1) * Width + Math.Clamp(c, 0, Width - 1)];
    public Plane Map(Func<double, double> f) => new(Data.Select(f).ToArray(), Height, Width);

    /// <summary>Bilinear sample at (row, col); zero outside the image (skimage warp, mode='constant').</summary>
    public double Bilinear(double r, double c)
    {
        var r0 = (int)Math.Floor(r);
        var c0 = (int)Math.Floor(c);
        var fr = r - r0;
        var fc = c - c0;
        return (1 - fr) * ((1 - fc) * OrZero(r0, c0) + fc * OrZero(r0, c0 + 1)) + fr * ((1 - fc) * OrZero(r0 + 1, c0) + fc * OrZero(r0 + 1, c0 + 1));
    }

    private double OrZero(int r, int c) => r < 0 || c < 0 || r >= Height || c >= Width ? 0 : Data[r * Width + c];
}

/// <summary>SplitMix64/xoshiro-style generator keyed by (seed, corruption, image): independent of threading.</summary>
internal sealed class Rng
{
    private ulong state;

    public Rng(int seed, int stream, int index)
    {
        state = Mix((ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)(uint)stream + 0x632BE59BD9B4E019UL) ^ Mix((ulong)(uint)index * 0xD1B54A32D192ED03UL + 1));
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong Next()
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }

    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));
    public double Uniform(double low, double high) => low + (high - low) * NextDouble();
    /// <summary>Integer in [low, high), as numpy's randint.</summary>
    public int Int(int low, int high) => low + (int)(NextDouble() * (high - low));
    public bool Coin() => NextDouble() < 0.5;
    public int Sign() => Coin() ? -1 : 1;

    public double Normal(double mean, double std)
    {
        double u1;
        do u1 = NextDouble(); while (u1 <= double.Epsilon);
        var u2 = NextDouble();
        return mean + std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Knuth's multiplication method; fine for the small rates used here (λ ≤ 60).</summary>
    public int Poisson(double lambda)
    {
        if (lambda <= 0) return 0;
        var limit = Math.Exp(-lambda);
        var k = 0;
        var p = NextDouble();
        while (p > limit)
        {
            k++;
            p *= NextDouble();
        }
        return k;
    }
}
