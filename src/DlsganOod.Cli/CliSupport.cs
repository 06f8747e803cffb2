using DlsganOod.Core.Data;
using DlsganOod.Core.Model;
using Spectre.Console;

namespace DlsganOod.Cli;

/// <summary>Shared conventions: expected failures print one clear line and exit 1 (2 for usage errors).</summary>
internal static class CliSupport
{
    public static async Task<int> Run(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DataFormatException or CheckpointException or ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled");
            return 130;
        }
    }

    public static int Run(Func<int> body) => Run(() => Task.FromResult(body())).GetAwaiter().GetResult();

    public static void Info(string message) => Console.Error.WriteLine(message);

    public static bool Interactive => AnsiConsole.Profile.Capabilities.Interactive && !Console.IsErrorRedirected;
}
