using DlsganOod.Core.Data;
using DlsganOod.Core.Metrics;
using DlsganOod.Core.Model;

namespace DlsganOod.Core.Scoring;

public static class Calibration
{
    /// <summary>
    /// Threshold on the log-likelihood such that about <paramref name="targetFpr"/> of the given in-distribution
    /// images (which the model must not have trained on) fall below it.
    /// </summary>
    public static CalibrationRecord CalibrateLogLikelihood(LoadedCheckpoint checkpoint, ImageSet images, double targetFpr, string source) =>
        CalibrateScore(checkpoint, null, images, OodScoreModel.LogLikelihood, targetFpr, source);

    /// <summary>
    /// Threshold for any score at a target false-positive rate. Stored on the score's natural scale: for
    /// log_likelihood, OOD iff log-likelihood &lt; threshold; for every other score, OOD iff score &gt; threshold.
    /// </summary>
    public static CalibrationRecord CalibrateScore(LoadedCheckpoint checkpoint, OodScoreModel? scores, ImageSet images, string score, double targetFpr, string source)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(images);
        OodScoreModel.CheckName(score);
        var fingerprint = images.Fingerprint();
        if (checkpoint.Metadata.Training?.DataFingerprint == fingerprint)
            throw new ArgumentException("The calibration images are the model's training images; calibrate on held-out in-distribution data.");
        var features = ScoreFeatures.Compute(checkpoint.Model, images);
        return CalibrateFeatures(scores, features, score, targetFpr, fingerprint, source);
    }

    public static CalibrationRecord CalibrateFeatures(OodScoreModel? scores, ScoreFeatures features, string score, double targetFpr, string fingerprint, string source)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (score != OodScoreModel.LogLikelihood && scores is null)
            throw new ArgumentException($"Score '{score}' needs fitted statistics (calibrate --score fits them on the fit split).");
        var values = scores is null ? OodScoreModel.PaperScore(features) : scores.Score(score, features);
        var (threshold, achieved) = OodMetrics.ThresholdForFpr(values, targetFpr);
        return new CalibrationRecord
        {
            Score = score,
            TargetFpr = targetFpr,
            Threshold = score == OodScoreModel.LogLikelihood ? -threshold : threshold,
            AchievedFpr = achieved,
            Count = features.Count,
            DataFingerprint = fingerprint,
            DataSource = source,
            CalibratedAt = DateTimeOffset.UtcNow,
        };
    }

    /// <summary>Whether a score value is OOD under a calibration (the orientation rule above).</summary>
    public static bool IsOod(string score, double value, double threshold) =>
        score == OodScoreModel.LogLikelihood ? value < threshold : value > threshold;
}
