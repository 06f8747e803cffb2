using System.Diagnostics;
using DlsganOod.Core.Imaging;
using DlsganOod.Core.Model;
using DlsganOod.Core.Scoring;

namespace DlsganOod.Worker;

/// <summary>A loaded, calibrated model as served: the threshold always comes from the same checkpoint.</summary>
public sealed class ModelSlot : IDisposable
{
    public ModelSlot(LoadedCheckpoint checkpoint, string? version = null, string score = OodScoreModel.LogLikelihood)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        OodScoreModel.CheckName(score);
        var calibration = (score == OodScoreModel.LogLikelihood ? checkpoint.Metadata.Calibration : checkpoint.Metadata.ScoreCalibrations?.GetValueOrDefault(score))
            ?? throw new CheckpointException($"{checkpoint.Directory}: the model is not calibrated for score '{score}'; run `dlsgan-ood calibrate --model {checkpoint.Directory} --score {score}` first");
        if (score != OodScoreModel.LogLikelihood)
            Scores = OodScoreModel.Load(checkpoint.Directory)
                ?? throw new CheckpointException($"{checkpoint.Directory}: score '{score}' needs the fitted statistics (scores.json); run calibrate --score {score}");
        Score = score;
        Checkpoint = checkpoint;
        Threshold = calibration.Threshold;
        CalibratedFpr = calibration.AchievedFpr > 0 ? calibration.AchievedFpr : calibration.TargetFpr;
        Identity = new ModelIdentity(checkpoint.Metadata.Name, version ?? checkpoint.Sha256[..12], checkpoint.Sha256);
    }

    public LoadedCheckpoint Checkpoint { get; }
    public string Score { get; }
    /// <summary>Fitted statistics for scores beyond the paper's; null when serving log_likelihood.</summary>
    public OodScoreModel? Scores { get; }
    public double Threshold { get; }
    public double CalibratedFpr { get; }
    public ModelIdentity Identity { get; }
    public void Dispose() => Checkpoint.Dispose();
}

/// <summary>
/// Decodes, preprocesses and scores one micro-batch on the calling (inference) thread. Messages that cannot
/// become an image get a dead-letter verdict; the rest go through the encoder together.
/// </summary>
public sealed class ScoringEngine
{
    public const int EvidenceDimensions = 8;
    private readonly DecodeLimits limits;

    public ScoringEngine(DecodeLimits limits) => this.limits = limits;

    public IReadOnlyList<Verdict> Score(ModelSlot slot, IReadOnlyList<InputMessage> batch, GateMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(slot);
        ArgumentNullException.ThrowIfNull(batch);
        var clock = Stopwatch.StartNew();
        var model = slot.Checkpoint.Model;
        var p = model.Preprocessing;
        var verdicts = new Verdict?[batch.Count];
        var input = new float[batch.Count * p.ModelSize];
        var scoredIndex = new List<int>(batch.Count);
        for (var i = 0; i < batch.Count; i++)
        {
            try
            {
                var image = p.ConformOne(MessageDecoder.Decode(batch[i], limits));
                p.WriteModelInput(image.Pixels, input.AsSpan(scoredIndex.Count * p.ModelSize, p.ModelSize));
                scoredIndex.Add(i);
            }
            catch (ImageDecodeException ex)
            {
                verdicts[i] = new Verdict(batch[i], VerdictKind.DeadLetter, ErrorCode: ex.Code, ErrorMessage: ex.Message, Model: slot.Identity, DecidedAt: DateTimeOffset.UtcNow);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or OverflowException)
            {
                verdicts[i] = new Verdict(batch[i], VerdictKind.DeadLetter, ErrorCode: ImageCodec.CodeUnreadable, ErrorMessage: ex.Message, Model: slot.Identity, DecidedAt: DateTimeOffset.UtcNow);
            }
        }
        if (scoredIndex.Count > 0)
        {
            var modelInput = input.AsSpan(0, scoredIndex.Count * p.ModelSize).ToArray();
            // The paper's score needs only the encoder; the others also need G(E(x)) and fitted statistics.
            var encodings = slot.Scores is null
                ? Inference.EncodeBatch(model, modelInput, scoredIndex.Count)
                : null;
            var features = slot.Scores is null ? null : ScoreFeatures.ComputeBatch(model, modelInput, scoredIndex.Count, OodScoreModel.NeedsReconstruction(slot.Score));
            var scoreValues = features is null ? null : slot.Scores!.Score(slot.Score, features);
            var lls = encodings?.LogLikelihood ?? features!.LogLikelihood;
            var mean = model.MeanArray();
            var variance = model.VarianceArray();
            var now = DateTimeOffset.UtcNow;
            for (var j = 0; j < scoredIndex.Count; j++)
            {
                var ll = lls[j];
                var latent = (encodings is null ? features!.Latent(j) : encodings.Latent(j)).ToArray();
                var value = scoreValues?[j] ?? ll;
                if (!double.IsFinite(ll) || !double.IsFinite(value))
                {
                    verdicts[scoredIndex[j]] = new Verdict(batch[scoredIndex[j]], VerdictKind.DeadLetter, ErrorCode: "non_finite_score",
                        ErrorMessage: "the model produced a non-finite log-likelihood", Model: slot.Identity, DecidedAt: now);
                    continue;
                }
                var ood = Calibration.IsOod(slot.Score, value, slot.Threshold);
                (int, double, float)[]? evidence = null;
                if (ood)
                    evidence = LatentLogLikelihood.TopDeviations(latent, mean, variance, EvidenceDimensions)
                        .Select(d => (d.Dimension, d.Deviation, latent[d.Dimension])).ToArray();
                verdicts[scoredIndex[j]] = new Verdict(batch[scoredIndex[j]], ood ? VerdictKind.Ood : VerdictKind.Pass, ll, slot.Threshold, evidence,
                    Model: slot.Identity, DecidedAt: now, ScoreName: slot.Score, ScoreValue: value);
                metrics?.LogLikelihood.Observe(ll);
            }
        }
        metrics?.InferenceSeconds.Observe(clock.Elapsed.TotalSeconds);
        return verdicts.Select(v => v!).ToArray();
    }
}
