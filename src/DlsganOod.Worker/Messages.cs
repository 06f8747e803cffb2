using System.Globalization;
using Confluent.Kafka;
using DlsganOod.Core.Imaging;

namespace DlsganOod.Worker;

/// <summary>One consumed message: its coordinates and everything that must travel with it.</summary>
public sealed record InputMessage(
    TopicPartitionOffset Source, byte[]? Key, byte[]? Value, Headers Headers, Timestamp Timestamp, long ReceivedTicks)
{
    /// <summary>The key as text if present, else topic-partition-offset.</summary>
    public string Id => Key is { Length: > 0 } k ? System.Text.Encoding.UTF8.GetString(k) : $"{Source.Topic}-{Source.Partition.Value}-{Source.Offset.Value}";

    public string? Header(string name) =>
        Headers.TryGetLastBytes(name, out var v) ? System.Text.Encoding.UTF8.GetString(v) : null;
}

public enum VerdictKind
{
    Pass,
    Ood,
    DeadLetter,
}

/// <summary>The outcome for one message; exactly one per consumed offset.</summary>
public sealed record Verdict(
    InputMessage Message, VerdictKind Kind, double LogLikelihood = double.NaN, double Threshold = double.NaN,
    (int Dimension, double Deviation, float Value)[]? Evidence = null, string? ErrorCode = null, string? ErrorMessage = null,
    ModelIdentity? Model = null, DateTimeOffset DecidedAt = default, string ScoreName = "log_likelihood", double ScoreValue = double.NaN)
{
    /// <summary>Sequence number of the micro-batch that decided this verdict (one model version per batch).</summary>
    public long Batch { get; init; }
}

public sealed record ModelIdentity(string Name, string Version, string Sha256);

/// <summary>Turns a message value into pixels according to its content-type header.</summary>
public static class MessageDecoder
{
    public const string ContentTypeHeader = "content-type";
    public const string RawPrefix = "image/x-raw";

    public static DecodedImage Decode(InputMessage message, DecodeLimits limits)
    {
        ArgumentNullException.ThrowIfNull(message);
        var value = message.Value;
        if (value is null || value.Length == 0) throw new ImageDecodeException(ImageCodec.CodeEmpty, "message has no value");
        if (value.Length > limits.MaxBytes)
            throw new ImageDecodeException(ImageCodec.CodeTooLarge, $"{value.Length} bytes exceeds the limit of {limits.MaxBytes}");
        var contentType = message.Header(ContentTypeHeader)?.Trim();
        if (contentType is null || contentType.Length == 0 || contentType.StartsWith("image/png", StringComparison.OrdinalIgnoreCase)
            || contentType.StartsWith("image/jpeg", StringComparison.OrdinalIgnoreCase) || contentType.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase))
            return ImageCodec.Decode(value, limits);
        if (contentType.StartsWith(RawPrefix, StringComparison.OrdinalIgnoreCase))
        {
            var parameters = ParseParameters(contentType);
            int Required(string name) =>
                parameters.TryGetValue(name, out var s) && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v)
                    ? v
                    : throw new ImageDecodeException(ImageCodec.CodeBadRaw, $"content-type '{contentType}' lacks a valid {name}");
            return ImageCodec.FromRaw(value, Required("width"), Required("height"), Required("channels"), limits);
        }
        throw new ImageDecodeException(ImageCodec.CodeUnsupported, $"unsupported content-type '{contentType}' (image/png, image/jpeg or {RawPrefix};width=W;height=H;channels=C)");
    }

    private static Dictionary<string, string> ParseParameters(string contentType) =>
        contentType.Split(';').Skip(1)
            .Select(p => p.Split('=', 2))
            .Where(kv => kv.Length == 2)
            .GroupBy(kv => kv[0].Trim().ToLowerInvariant())
            .ToDictionary(g => g.Key, g => g.Last()[1].Trim(), StringComparer.Ordinal);

    public static string RawContentType(int width, int height, int channels) =>
        string.Create(CultureInfo.InvariantCulture, $"{RawPrefix};width={width};height={height};channels={channels}");
}
