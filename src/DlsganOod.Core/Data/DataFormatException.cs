namespace DlsganOod.Core.Data;

/// <summary>Input data that cannot be read; the message always names the file and the problem.</summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string path, string problem) : base($"{path}: {problem}")
    {
        Path = path;
        Problem = problem;
    }

    public DataFormatException(string path, string problem, Exception inner) : base($"{path}: {problem}", inner)
    {
        Path = path;
        Problem = problem;
    }

    public DataFormatException() : this("(unknown)", "unreadable data") { }
    public DataFormatException(string message) : this("(unknown)", message) { }

    public string Path { get; }
    public string Problem { get; }
}
