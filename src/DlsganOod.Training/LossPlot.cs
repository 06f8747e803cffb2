namespace DlsganOod.Training;

/// <summary>Loss curves of a training log as a PNG: adversarial losses, encoder loss and the variance trace.</summary>
public static class LossPlot
{
    public static void Write(string logCsv, string pngPath)
    {
        var rows = File.ReadLines(logCsv).Skip(1).Where(l => l.Length > 0).Select(TrainingLogRow.Parse).ToArray();
        if (rows.Length < 2) return;
        var x = rows.Select(r => r.Epoch).ToArray();

        using var adv = new ScottPlot.Plot();
        adv.Add.ScatterLine(x, rows.Select(r => r.LossD).ToArray()).LegendText = "L_D";
        adv.Add.ScatterLine(x, rows.Select(r => r.LossG).ToArray()).LegendText = "L_G";
        adv.Title("Adversarial losses (with λ_enc·L_enc)");
        adv.XLabel("epoch");
        adv.ShowLegend();

        using var enc = new ScottPlot.Plot();
        enc.Add.ScatterLine(x, rows.Select(r => r.LossEnc).ToArray()).LegendText = "L_enc";
        enc.Title("Encoder loss (1.0 = predicting 0)");
        enc.XLabel("epoch");
        enc.Axes.SetLimitsY(0, Math.Max(1.1, rows.Max(r => r.LossEnc)));

        using var variance = new ScottPlot.Plot();
        variance.Add.ScatterLine(x, rows.Select(r => r.EffectiveDimensions).ToArray()).LegendText = "effective dims (Σv)²/Σv²";
        variance.Title("Latent variance trace v");
        variance.XLabel("epoch");
        variance.ShowLegend();

        var png = DlsganOod.Core.Imaging.PngComposer.StackVertically(
            new[] { adv, enc, variance }.Select(p => p.GetImageBytes(900, 330, ScottPlot.ImageFormat.Png)).ToArray());
        File.WriteAllBytes(pngPath, png);
    }
}
