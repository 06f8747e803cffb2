using Confluent.Kafka;

namespace DlsganOod.Worker;

/// <summary>
/// Per-partition watermark. Batches finish out of order, so an offset may be committed only when it and
/// every earlier offset of its partition are done (all outputs acknowledged). Thread-safe.
/// </summary>
public sealed class OffsetTracker
{
    private readonly object gate = new();
    private readonly Dictionary<TopicPartition, PartitionState> partitions = new();

    private sealed class PartitionState
    {
        /// <summary>Offsets handed to the pipeline and not yet done, in order.</summary>
        public SortedSet<long> InFlight { get; } = [];
        /// <summary>Highest offset seen + 1: the commit position when nothing is in flight.</summary>
        public long NextOffset { get; set; } = -1;
        public long LastCommitted { get; set; } = -1;
        /// <summary>Lowest offset dropped without processing: the watermark never passes it.</summary>
        public long Cap { get; set; } = long.MaxValue;
    }

    /// <summary>Registers a consumed offset as in flight.</summary>
    public void Track(TopicPartitionOffset tpo)
    {
        ArgumentNullException.ThrowIfNull(tpo);
        lock (gate)
        {
            if (!partitions.TryGetValue(tpo.TopicPartition, out var p))
                partitions[tpo.TopicPartition] = p = new PartitionState();
            p.InFlight.Add(tpo.Offset.Value);
            p.NextOffset = Math.Max(p.NextOffset, tpo.Offset.Value + 1);
        }
    }

    /// <summary>Marks an offset done; ignored if its partition is no longer tracked (revoked or lost).</summary>
    public void Complete(TopicPartitionOffset tpo)
    {
        ArgumentNullException.ThrowIfNull(tpo);
        lock (gate)
        {
            if (partitions.TryGetValue(tpo.TopicPartition, out var p)) p.InFlight.Remove(tpo.Offset.Value);
            Monitor.PulseAll(gate);
        }
    }

    /// <summary>For each partition whose watermark moved since the last call: the offset to commit (next to read).</summary>
    public List<TopicPartitionOffset> TakeCommittable(IEnumerable<TopicPartition>? only = null)
    {
        var result = new List<TopicPartitionOffset>();
        lock (gate)
        {
            foreach (var (tp, p) in partitions)
            {
                if (only is not null && !only.Contains(tp)) continue;
                var watermark = Math.Min(p.InFlight.Count > 0 ? p.InFlight.Min : p.NextOffset, p.Cap);
                if (watermark > p.LastCommitted && watermark >= 0)
                {
                    result.Add(new TopicPartitionOffset(tp, watermark));
                    p.LastCommitted = watermark;
                }
            }
        }
        return result;
    }

    /// <summary>Waits until nothing is in flight for the given partitions, or the timeout passes.</summary>
    public bool WaitDrained(IReadOnlyCollection<TopicPartition> which, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (gate)
        {
            while (which.Any(tp => partitions.TryGetValue(tp, out var p) && p.InFlight.Count > 0))
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(gate, left);
            }
            return true;
        }
    }

    /// <summary>Removes offsets that will not be processed here; the watermark stays below the lowest of them.</summary>
    public void Drop(IEnumerable<TopicPartitionOffset> offsets)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        lock (gate)
        {
            foreach (var o in offsets)
                if (partitions.TryGetValue(o.TopicPartition, out var p))
                {
                    p.InFlight.Remove(o.Offset.Value);
                    p.Cap = Math.Min(p.Cap, o.Offset.Value);
                }
            Monitor.PulseAll(gate);
        }
    }

    /// <summary>After a failed commit: lets these partitions' watermarks be offered again.</summary>
    public void ForgetCommitted(IEnumerable<TopicPartitionOffset> offsets)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        lock (gate)
            foreach (var o in offsets)
                if (partitions.TryGetValue(o.TopicPartition, out var p) && p.LastCommitted == o.Offset.Value)
                    p.LastCommitted = -1;
    }

    public void Forget(IEnumerable<TopicPartition> which)
    {
        lock (gate)
        {
            foreach (var tp in which) partitions.Remove(tp);
            Monitor.PulseAll(gate);
        }
    }

    public int InFlightCount
    {
        get
        {
            lock (gate) return partitions.Values.Sum(p => p.InFlight.Count);
        }
    }

    public bool IsTracked(TopicPartition tp)
    {
        lock (gate) return partitions.ContainsKey(tp);
    }
}
