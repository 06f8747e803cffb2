using System.Threading.Channels;

namespace DlsganOod.Worker;

/// <summary>
/// Micro-batching: a batch closes when it holds <c>maxSize</c> messages or <c>maxWait</c> has passed since its
/// first message, whichever comes first. Synchronous on purpose: it runs on the inference thread, which owns
/// the model, so batching and scoring never hop threads.
/// </summary>
public static class BatchingLoop
{
    /// <summary>Batches until the channel is completed and empty, or cancellation.</summary>
    public static IEnumerable<List<T>> Batches<T>(ChannelReader<T> reader, int maxSize, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSize, 1);
        while (Wait(reader, Timeout.InfiniteTimeSpan, cancellationToken))
        {
            if (!reader.TryRead(out var first)) continue;
            var batch = new List<T>(maxSize) { first };
            var deadline = DateTime.UtcNow + maxWait;
            while (batch.Count < maxSize)
            {
                if (reader.TryRead(out var next))
                {
                    batch.Add(next);
                    continue;
                }
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Wait(reader, left, cancellationToken)) break;
            }
            yield return batch;
        }
    }

    /// <summary>True when data is available; false on timeout, completion or cancellation.</summary>
    private static bool Wait<T>(ChannelReader<T> reader, TimeSpan timeout, CancellationToken cancellationToken) =>
        Block(reader.WaitToReadAsync, timeout, cancellationToken);

    /// <summary>
    /// Blocks the calling thread on a channel's WaitToRead/WaitToWrite for at most <paramref name="timeout"/>
    /// (<see cref="Timeout.InfiniteTimeSpan"/>: no limit): its result, or false on timeout or cancellation. The
    /// consume and inference threads are dedicated threads, so they block rather than await.
    /// </summary>
    internal static bool Block(Func<CancellationToken, ValueTask<bool>> wait, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return false;
        if (timeout != Timeout.InfiniteTimeSpan && timeout <= TimeSpan.Zero) return false;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout != Timeout.InfiniteTimeSpan) cts.CancelAfter(timeout);
        try
        {
            return wait(cts.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
