using Prometheus;

namespace DlsganOod.Worker;

/// <summary>The worker's Prometheus metrics (all named dlsgan_ood_*), in a registry of its own per worker.</summary>
public sealed class GateMetrics
{
    public GateMetrics(CollectorRegistry? registry = null)
    {
        Registry = registry ?? Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(Registry);
        Consumed = f.CreateCounter("dlsgan_ood_messages_consumed_total", "Messages read from the input topics.");
        Scored = f.CreateCounter("dlsgan_ood_messages_scored_total", "Messages decoded and scored by the model.");
        Flagged = f.CreateCounter("dlsgan_ood_messages_flagged_total", "Messages scored out-of-distribution (alerts).");
        Quarantined = f.CreateCounter("dlsgan_ood_messages_quarantined_total", "Messages copied to the quarantine topic (acknowledged).");
        Passed = f.CreateCounter("dlsgan_ood_messages_passed_total", "Messages copied to the pass topic (acknowledged).");
        DeadLettered = f.CreateCounter("dlsgan_ood_messages_dead_lettered_total", "Messages that could not be scored, by error code (acknowledged).", new CounterConfiguration { LabelNames = ["code"] });
        OutputRetries = f.CreateCounter("dlsgan_ood_output_retries_total", "Output records produced again after a delivery failure.");
        BatchSize = f.CreateHistogram("dlsgan_ood_batch_size", "Messages per micro-batch.", new HistogramConfiguration { Buckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });
        InferenceSeconds = f.CreateHistogram("dlsgan_ood_inference_seconds", "Decode, preprocessing and encoder time per batch.", new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
        EndToEndSeconds = f.CreateHistogram("dlsgan_ood_end_to_end_seconds", "From the input's Kafka timestamp to all its outputs acknowledged.", new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 18) });
        LogLikelihood = f.CreateHistogram("dlsgan_ood_log_likelihood", "Latent log-likelihood of scored messages.", new HistogramConfiguration { Buckets = Histogram.LinearBuckets(-1200, 50, 30) });
        Threshold = f.CreateGauge("dlsgan_ood_threshold", "Calibrated log-likelihood threshold of the served model (OOD below it).");
        ModelInfo = f.CreateGauge("dlsgan_ood_model_info", "The served model (value 1).", new GaugeConfiguration { LabelNames = ["name", "version"] });
        ChannelDepth = f.CreateGauge("dlsgan_ood_channel_depth", "Messages waiting in the bounded channel between consumer and batcher.");
        ConsumerLag = f.CreateGauge("dlsgan_ood_consumer_lag", "High watermark minus next offset to consume, per partition.", new GaugeConfiguration { LabelNames = ["topic", "partition"] });
        OodRate = f.CreateGauge("dlsgan_ood_ood_rate", "OOD rate over the rolling drift window.");
        CalibratedFpr = f.CreateGauge("dlsgan_ood_calibrated_fpr", "False-positive rate measured at calibration (expected OOD rate on in-distribution input).");
        Drift = f.CreateGauge("dlsgan_ood_drift", "1 when the rolling OOD rate departs from the calibrated rate beyond chance (binomial test), else 0.");
        DriftPValue = f.CreateGauge("dlsgan_ood_drift_p_value", "Two-sided binomial p-value of the rolling OOD rate against the calibrated rate.");
        PausedPartitions = f.CreateGauge("dlsgan_ood_paused_partitions", "Partitions paused for backpressure.");
        BackpressurePauses = f.CreateCounter("dlsgan_ood_backpressure_pauses_total", "Times the consumer paused its partitions because the channel was full.");
        TransactionsCommitted = f.CreateCounter("dlsgan_ood_transactions_committed_total", "ExactlyOnce mode: batches committed as one transaction with their consumed offsets.");
        TransactionsAborted = f.CreateCounter("dlsgan_ood_transactions_aborted_total", "ExactlyOnce mode: transaction attempts aborted and retried.");
        ProducerReplacements = f.CreateCounter("dlsgan_ood_producer_replacements_total", "ExactlyOnce mode: transactional producers replaced after a call wedged past its timeout.");
        ShadowOodRate = f.CreateGauge("dlsgan_ood_shadow_ood_rate", "OOD rate of the shadow (candidate) model on the same inputs since it was loaded.", new GaugeConfiguration { LabelNames = ["version"] });
        ShadowAgreement = f.CreateGauge("dlsgan_ood_shadow_agreement_ratio", "Share of inputs on which the shadow model's verdict equals the served model's.", new GaugeConfiguration { LabelNames = ["version"] });
        ShadowScored = f.CreateCounter("dlsgan_ood_shadow_scored_total", "Inputs scored by the shadow model.");
        ModelSwaps = f.CreateCounter("dlsgan_ood_model_swaps_total", "Promoted versions swapped in.");
        ModelLoadFailures = f.CreateCounter("dlsgan_ood_model_load_failures_total", "Model versions refused at load.");
    }

    public CollectorRegistry Registry { get; }
    /// <summary>Refreshes gauges that are read from elsewhere (set by the worker).</summary>
    public Action? ChannelDepthSource { get; set; }
    public Counter Consumed { get; }
    public Counter Scored { get; }
    public Counter Flagged { get; }
    public Counter Quarantined { get; }
    public Counter Passed { get; }
    public Counter DeadLettered { get; }
    public Counter OutputRetries { get; }
    public Histogram BatchSize { get; }
    public Histogram InferenceSeconds { get; }
    public Histogram EndToEndSeconds { get; }
    public Histogram LogLikelihood { get; }
    public Gauge Threshold { get; }
    public Gauge ModelInfo { get; }
    public Gauge ChannelDepth { get; }
    public Gauge ConsumerLag { get; }
    public Gauge OodRate { get; }
    public Gauge CalibratedFpr { get; }
    public Gauge Drift { get; }
    public Gauge DriftPValue { get; }
    public Gauge PausedPartitions { get; }
    public Counter BackpressurePauses { get; }
    public Counter ModelLoadFailures { get; }
    public Gauge ShadowOodRate { get; }
    public Gauge ShadowAgreement { get; }
    public Counter ShadowScored { get; }
    public Counter ModelSwaps { get; }
    public Counter TransactionsCommitted { get; }
    public Counter TransactionsAborted { get; }
    public Counter ProducerReplacements { get; }
}
