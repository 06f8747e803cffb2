using System.CommandLine;

namespace DlsganOod.Cli;

internal static class Commands
{
    public static IEnumerable<Command> All() =>
    [
        DataCommand.Create(),
        TrainCommand.Create(),
        ModelCommands.Calibrate(),
        ModelCommands.Export(),
        LifecycleCommands.Publish(),
        LifecycleCommands.Models(),
        ModelCommands.Corrupt(),
        ModelCommands.Score(),
        ModelCommands.Evaluate(),
        SampleCommand.Create(),
        StreamCommands.Worker(),
        DemoCommand.Create(),
        StreamCommands.Produce(),
        StreamCommands.Alerts(),
        BenchCommand.Create(),
        ClassifierCommand.Create(),
        ReliabilityCommands.Faults(),
        ReliabilityCommands.Soak(),
    ];
}
