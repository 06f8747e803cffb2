using System.Globalization;
using DlsganOod.Core.Model;
using static TorchSharp.torch;

namespace DlsganOod.Training;

/// <summary>One row of training-log.csv: losses averaged since the previous row, and the state of v.</summary>
public sealed record TrainingLogRow(
    long Step, double Epoch, double LearningRate, double LossD, double LossG, double LossEnc, double R1,
    double AdversarialReal, double AdversarialFake, double VarianceMean, double VarianceMin, double VarianceMax,
    double EffectiveDimensions, double Seconds)
{
    public const string Header = "step,epoch,lr,loss_d,loss_g,loss_enc,r1,adv_real,adv_fake,v_mean,v_min,v_max,v_effective_dims,seconds";

    public bool IsFinite => double.IsFinite(LossD) && double.IsFinite(LossG) && double.IsFinite(LossEnc) && double.IsFinite(VarianceMean);

    public string ToCsv() => string.Join(',', new[]
    {
        Step.ToString(CultureInfo.InvariantCulture), F(Epoch), F(LearningRate), F(LossD), F(LossG), F(LossEnc), F(R1),
        F(AdversarialReal), F(AdversarialFake), F(VarianceMean), F(VarianceMin), F(VarianceMax), F(EffectiveDimensions), F(Seconds),
    });

    public static TrainingLogRow Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var p = line.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        if (p.Length != 14) throw new FormatException($"training log row has {p.Length} fields, expected 14");
        return new TrainingLogRow((long)p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13]);
    }

    private static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    public readonly record struct StepStats(double LossD, double LossG, double LossEnc, double R1, double AdversarialReal, double AdversarialFake);

    public sealed class Accumulator
    {
        private readonly List<StepStats> steps = [];

        public IReadOnlyDictionary<string, double> LastLosses { get; private set; } = new Dictionary<string, double>();

        public void Add(StepStats stats) => steps.Add(stats);

        public TrainingLogRow Flush(long step, double epoch, double lr, double seconds, DlsganModel model)
        {
            ArgumentNullException.ThrowIfNull(model);
            double Mean(Func<StepStats, double> f)
            {
                var values = steps.Select(f).Where(v => !double.IsNaN(v)).ToArray();
                return values.Length == 0 ? double.NaN : values.Average();
            }
            var v = model.VarianceArray();
            var sum = v.Sum(x => (double)x);
            var sumSq = v.Sum(x => (double)x * x);
            var row = new TrainingLogRow(step, epoch, lr, Mean(s => s.LossD), Mean(s => s.LossG), Mean(s => s.LossEnc), Mean(s => s.R1),
                Mean(s => s.AdversarialReal), Mean(s => s.AdversarialFake), sum / v.Length, v.Min(), v.Max(), sum * sum / sumSq, seconds);
            LastLosses = new Dictionary<string, double>
            {
                ["loss_d"] = Math.Round(row.LossD, 6),
                ["loss_g"] = Math.Round(row.LossG, 6),
                ["loss_enc"] = Math.Round(row.LossEnc, 6),
                ["r1"] = double.IsNaN(row.R1) ? 0 : Math.Round(row.R1, 6),
            };
            steps.Clear();
            return row;
        }
    }
}
