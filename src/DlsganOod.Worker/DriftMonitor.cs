namespace DlsganOod.Worker;

/// <summary>
/// Rolling OOD rate over the last N scored messages and an exact two-sided binomial test against the
/// calibrated false-positive rate: a shift in the input stream shows as a rate that chance cannot explain.
/// </summary>
public sealed class DriftMonitor
{
    private readonly bool[] window;
    private readonly object gate = new();
    private int next;
    private int filled;
    private int flagged;

    public DriftMonitor(int windowSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowSize, 1);
        window = new bool[windowSize];
    }

    public void Add(bool isOod)
    {
        lock (gate)
        {
            if (filled == window.Length && window[next]) flagged--;
            window[next] = isOod;
            if (isOod) flagged++;
            next = (next + 1) % window.Length;
            filled = Math.Min(filled + 1, window.Length);
        }
    }

    public (int Flagged, int Count) Snapshot()
    {
        lock (gate) return (flagged, filled);
    }

    public double Rate
    {
        get
        {
            var (k, n) = Snapshot();
            return n == 0 ? 0 : k / (double)n;
        }
    }

    /// <summary>Two-sided exact binomial p-value: the probability, under rate p0, of an outcome as unlikely as k of n.</summary>
    public static double BinomialTwoSidedPValue(int k, int n, double p0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, k);
        if (n == 0) return 1;
        p0 = Math.Clamp(p0, 1e-12, 1 - 1e-12);
        var logFactorial = new double[n + 1];
        for (var i = 2; i <= n; i++) logFactorial[i] = logFactorial[i - 1] + Math.Log(i);
        var logP = new double[n + 1];
        for (var i = 0; i <= n; i++)
            logP[i] = logFactorial[n] - logFactorial[i] - logFactorial[n - i] + i * Math.Log(p0) + (n - i) * Math.Log(1 - p0);
        var observed = logP[k];
        // Sum the probabilities of all outcomes no more likely than the observed one (with a relative tolerance).
        var total = 0.0;
        for (var i = 0; i <= n; i++)
            if (logP[i] <= observed + 1e-7) total += Math.Exp(logP[i]);
        return Math.Min(1, total);
    }
}
