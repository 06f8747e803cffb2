using Confluent.Kafka;

namespace DlsganOod.Worker.Tests;

public class DriftAndTrackerTests
{
    [Fact]
    public void Binomial_p_value_matches_hand_computed_cases()
    {
        // n = 2, p = 0.5: P(0) = P(2) = 0.25, P(1) = 0.5; two-sided p(k=0) = 0.5, p(k=1) = 1.
        Assert.Equal(0.5, DriftMonitor.BinomialTwoSidedPValue(0, 2, 0.5), 9);
        Assert.Equal(1.0, DriftMonitor.BinomialTwoSidedPValue(1, 2, 0.5), 9);
        // 10 of 10 at p = 0.5: 2 · 0.5^10.
        Assert.Equal(2 * Math.Pow(0.5, 10), DriftMonitor.BinomialTwoSidedPValue(10, 10, 0.5), 12);
    }

    [Fact]
    public void Drift_is_significant_only_for_rates_far_from_calibration()
    {
        Assert.True(DriftMonitor.BinomialTwoSidedPValue(20, 2000, 0.01) > 0.5);
        Assert.True(DriftMonitor.BinomialTwoSidedPValue(200, 2000, 0.01) < 1e-6);
        Assert.True(DriftMonitor.BinomialTwoSidedPValue(0, 2000, 0.01) < 0.001);
    }

    [Fact]
    public void Longest_stall_is_the_widest_gap_between_verdicts_after_the_fault_starts()
    {
        Assert.Equal(3.0, FaultScenarios.LongestStall([0.5, 1.1, 1.0, 4.1, 4.2], 1.0), 9);
        Assert.Equal(2.5, FaultScenarios.LongestStall([0.1, 3.5, 3.6], 1.0), 9); // the gap from the fault start counts
        Assert.Equal(0.0, FaultScenarios.LongestStall([0.1, 0.2], 1.0));
    }

    [Fact]
    public void Rolling_window_forgets_old_verdicts()
    {
        var m = new DriftMonitor(4);
        foreach (var x in new[] { true, true, false, false, false, false }) m.Add(x);
        Assert.Equal((0, 4), m.Snapshot());
        m.Add(true);
        Assert.Equal(0.25, m.Rate);
    }

    [Fact]
    public void Watermark_stops_at_the_lowest_unfinished_offset()
    {
        var t = new OffsetTracker();
        var tp = new TopicPartition("t", 0);
        for (var o = 10; o < 15; o++) t.Track(new TopicPartitionOffset(tp, o));
        t.Complete(new TopicPartitionOffset(tp, 12));
        t.Complete(new TopicPartitionOffset(tp, 13));
        Assert.Equal(10, t.TakeCommittable().Single().Offset.Value); // first offer: nothing before 10 is pending
        t.Complete(new TopicPartitionOffset(tp, 10));
        Assert.Equal(11, t.TakeCommittable().Single().Offset.Value);
        Assert.Empty(t.TakeCommittable()); // unchanged since last offer
        t.Complete(new TopicPartitionOffset(tp, 11));
        t.Complete(new TopicPartitionOffset(tp, 14));
        Assert.Equal(15, t.TakeCommittable().Single().Offset.Value);
    }

    [Fact]
    public void Dropped_offsets_cap_the_watermark_and_forgotten_partitions_ignore_completions()
    {
        var t = new OffsetTracker();
        var tp = new TopicPartition("t", 1);
        for (var o = 0; o < 4; o++) t.Track(new TopicPartitionOffset(tp, o));
        t.Drop([new TopicPartitionOffset(tp, 2), new TopicPartitionOffset(tp, 3)]);
        t.Complete(new TopicPartitionOffset(tp, 0));
        t.Complete(new TopicPartitionOffset(tp, 1));
        Assert.True(t.WaitDrained([tp], TimeSpan.FromMilliseconds(10)));
        Assert.Equal(2, t.TakeCommittable().Single().Offset.Value);
        t.Forget([tp]);
        t.Complete(new TopicPartitionOffset(tp, 5));
        Assert.Empty(t.TakeCommittable());
        Assert.False(t.IsTracked(tp));
    }

    [Fact]
    public void Batches_close_on_size_or_wait()
    {
        var channel = System.Threading.Channels.Channel.CreateUnbounded<int>();
        for (var i = 0; i < 10; i++) channel.Writer.TryWrite(i);
        channel.Writer.Complete();
        var batches = BatchingLoop.Batches(channel.Reader, 4, TimeSpan.FromMilliseconds(50), CancellationToken.None).ToList();
        Assert.Equal([4, 4, 2], batches.Select(b => b.Count));
        Assert.Equal(Enumerable.Range(0, 10), batches.SelectMany(b => b));

        var slow = System.Threading.Channels.Channel.CreateUnbounded<int>();
        slow.Writer.TryWrite(1);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var e = BatchingLoop.Batches(slow.Reader, 100, TimeSpan.FromMilliseconds(30), CancellationToken.None).GetEnumerator();
        Assert.True(e.MoveNext());
        Assert.Single(e.Current);
        Assert.True(sw.ElapsedMilliseconds < 5000);
    }
}
