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
    public static CalibrationRecord CalibrateLogLikelihood(LoadedCheckpoint checkpoint, ImageSet images, double targetFpr, string source)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(images);
        var fingerprint = images.Fingerprint();
        if (checkpoint.Metadata.Training?.DataFingerprint == fingerprint)
            throw new ArgumentException("The calibration images are the model's training images; calibrate on held-out in-distribution data.");
        var ll = Inference.Encode(checkpoint.Model, images).LogLikelihood;
        var (threshold, achieved) = OodMetrics.ThresholdForFpr(ll.Select(l => -l).ToArray(), targetFpr);
        return new CalibrationRecord
        {
            Score = "log_likelihood",
            TargetFpr = targetFpr,
            Threshold = -threshold,
            AchievedFpr = achieved,
            Count = images.Count,
            DataFingerprint = fingerprint,
            DataSource = source,
            CalibratedAt = DateTimeOffset.UtcNow,
        };
    }
}
