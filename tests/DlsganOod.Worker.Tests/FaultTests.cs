using DlsganOod.Core.Imaging;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace DlsganOod.Worker.Tests;

/// <summary>
/// The invariant under faults injected into the mock cluster: every input offset ends with a verdict record;
/// duplicates only in at-least-once mode (counted), none with transactions.
/// </summary>
public class FaultTests(TinyModel model, ITestOutputHelper output) : IClassFixture<TinyModel>
{
    private byte[][] Images() => Enumerable.Range(0, model.Images.Count)
        .Select(i => ImageCodec.EncodePng(new DecodedImage(28, 28, 1, model.Images.Image(i).ToArray()))).ToArray();

    private FaultResult Run(string scenario, bool exactlyOnce)
    {
        var session = scenario == "rebalance" ? 3000 : 10_000;
        var result = FaultScenarios.Run(scenario, exactlyOnce, Images(), c => FaultScenarios.StartInProcess(c, model.Path, exactlyOnce, session), messages: 450, ratePerSecond: 150);
        output.WriteLine(FaultResult.MarkdownHeader);
        output.WriteLine(result.ToMarkdownRow());
        return result;
    }

    [Theory]
    [InlineData("baseline")]
    [InlineData("broker-down")]
    [InlineData("produce-errors")]
    [InlineData("fetch-errors")]
    [InlineData("commit-errors")]
    [InlineData("coordinator-errors")]
    [InlineData("rebalance")]
    public void At_least_once_loses_nothing(string scenario)
    {
        var r = Run(scenario, exactlyOnce: false);
        Assert.InRange(r.MessagesIn, 440, 450); // the input producer's own retries may give up on a few under injected errors
        Assert.Equal(0, r.Lost);
        if (scenario is "baseline" or "produce-errors" or "fetch-errors") Assert.Equal(0, r.Duplicates);
    }

    // broker-down here usually wedges SendOffsetsToTransaction (librdkafka #5456/#5511); the gate must replace
    // the producer and go on. Handovers (rebalance, kill) are left out: the mock does not store offsets sent
    // in transactions, so a new owner re-reads everything (see docs/reliability.md).
    [Theory]
    [InlineData("baseline")]
    [InlineData("broker-down")]
    [InlineData("produce-errors")]
    [InlineData("fetch-errors")]
    public void Exactly_once_loses_nothing_and_duplicates_nothing(string scenario)
    {
        var r = Run(scenario, exactlyOnce: true);
        Assert.Equal(0, r.Lost);
        Assert.Equal(0, r.Duplicates);
    }
}
