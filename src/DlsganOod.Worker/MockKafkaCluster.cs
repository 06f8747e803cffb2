using System.Reflection;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace DlsganOod.Worker;

/// <summary>
/// librdkafka's built-in mock cluster: real Kafka protocol over real TCP on localhost, started in-process by
/// one client with <c>test.mock.num.brokers</c>. Every other client (any process) connects to
/// <see cref="BootstrapServers"/> like to a real cluster. Faults are injected through librdkafka's
/// <c>rd_kafka_mock_*</c> C API. Lives as long as this object.
/// </summary>
public sealed class MockKafkaCluster : IDisposable
{
    private readonly IAdminClient owner;
    private readonly IntPtr cluster;

    public MockKafkaCluster(int brokers = 1, int defaultPartitions = 4)
    {
        var config = new AdminClientConfig();
        config.Set("test.mock.num.brokers", brokers.ToString(System.Globalization.CultureInfo.InvariantCulture));
        owner = new AdminClientBuilder(config).Build();
        var metadata = owner.GetMetadata(TimeSpan.FromSeconds(10));
        if (metadata.Brokers.Count == 0) throw new InvalidOperationException("The mock cluster reported no brokers.");
        BootstrapServers = string.Join(',', metadata.Brokers.Select(b => $"{b.Host}:{b.Port}"));
        BrokerIds = metadata.Brokers.Select(b => b.BrokerId).ToArray();
        cluster = Native.rd_kafka_handle_mock_cluster(RawHandle(owner));
        if (cluster == IntPtr.Zero) throw new InvalidOperationException("librdkafka returned no mock cluster handle.");
        DefaultPartitions = defaultPartitions;
        // A new group rebalances at once instead of after the broker's usual 3 s grace.
        Native.rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
    }

    public string BootstrapServers { get; }
    public IReadOnlyList<int> BrokerIds { get; }
    public int DefaultPartitions { get; }

    /// <summary>Creates topics (no-op for existing ones).</summary>
    public void CreateTopics(int partitions, params string[] topics)
    {
        ArgumentNullException.ThrowIfNull(topics);
        foreach (var t in topics)
        {
            var err = (ErrorCode)Native.rd_kafka_mock_topic_create(cluster, t, partitions, 1);
            if (err is not (ErrorCode.NoError or ErrorCode.TopicAlreadyExists))
                throw new KafkaException(new Error(err, $"mock topic create '{t}' failed"));
        }
    }

    public void BrokerDown(int brokerId) => Check(Native.rd_kafka_mock_broker_set_down(cluster, brokerId), "broker down");
    public void BrokerUp(int brokerId) => Check(Native.rd_kafka_mock_broker_set_up(cluster, brokerId), "broker up");

    /// <summary>The next requests of this Kafka API (e.g. Produce = 0, Fetch = 1, OffsetCommit = 8) fail with these errors.</summary>
    public void PushRequestErrors(short apiKey, params ErrorCode[] errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        Native.rd_kafka_mock_push_request_errors_array(cluster, apiKey, (UIntPtr)errors.Length, errors.Select(e => (int)e).ToArray());
    }

    public void ClearRequestErrors(short apiKey) => Native.rd_kafka_mock_clear_request_errors(cluster, apiKey);

    public void SetCoordinator(string keyType, string key, int brokerId) =>
        Check(Native.rd_kafka_mock_coordinator_set(cluster, keyType, key, brokerId), "coordinator set");

    public void SetPartitionLeader(string topic, int partition, int brokerId) =>
        Check(Native.rd_kafka_mock_partition_set_leader(cluster, topic, partition, brokerId), "partition leader");

    private static void Check(int err, string what)
    {
        if (err != 0) throw new KafkaException(new Error((ErrorCode)err, $"mock {what} failed"));
    }

    /// <summary>The rd_kafka_t* behind a Confluent client (internal to Confluent.Kafka, reached by reflection).</summary>
    private static IntPtr RawHandle(IClient client)
    {
        var property = typeof(Handle).GetProperty("LibrdkafkaHandle", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            ?? throw new InvalidOperationException("Confluent.Kafka.Handle.LibrdkafkaHandle not found; this Confluent.Kafka version is not supported by the mock wrapper.");
        var safe = (SafeHandle)property.GetValue(client.Handle)!;
        return safe.DangerousGetHandle();
    }

    public void Dispose() => owner.Dispose();

    private static class Native
    {
        private const string Lib = "librdkafka";

        static Native() => NativeLibrary.SetDllImportResolver(typeof(Native).Assembly, (name, assembly, path) =>
        {
            if (name != Lib) return IntPtr.Zero;
            // The same file Confluent.Kafka loaded; dlopen hands back the already-loaded library.
            foreach (var candidate in new[]
                     {
                         Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "librdkafka.so"),
                         Path.Combine(AppContext.BaseDirectory, "librdkafka.so"),
                     })
                if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out var handle)) return handle;
            return NativeLibrary.TryLoad("librdkafka.so.1", assembly, path, out var fallback) ? fallback : IntPtr.Zero;
        });

        [DllImport(Lib)] public static extern IntPtr rd_kafka_handle_mock_cluster(IntPtr rk);
        [DllImport(Lib)] public static extern int rd_kafka_mock_topic_create(IntPtr mcluster, [MarshalAs(UnmanagedType.LPUTF8Str)] string topic, int partitionCnt, int replicationFactor);
        [DllImport(Lib)] public static extern int rd_kafka_mock_broker_set_down(IntPtr mcluster, int brokerId);
        [DllImport(Lib)] public static extern int rd_kafka_mock_broker_set_up(IntPtr mcluster, int brokerId);
        [DllImport(Lib)] public static extern void rd_kafka_mock_push_request_errors_array(IntPtr mcluster, short apiKey, UIntPtr cnt, int[] errors);
        [DllImport(Lib)] public static extern void rd_kafka_mock_clear_request_errors(IntPtr mcluster, short apiKey);
        [DllImport(Lib)] public static extern int rd_kafka_mock_coordinator_set(IntPtr mcluster, [MarshalAs(UnmanagedType.LPUTF8Str)] string keyType, [MarshalAs(UnmanagedType.LPUTF8Str)] string key, int brokerId);
        [DllImport(Lib)] public static extern int rd_kafka_mock_partition_set_leader(IntPtr mcluster, [MarshalAs(UnmanagedType.LPUTF8Str)] string topic, int partition, int brokerId);
        [DllImport(Lib)] public static extern void rd_kafka_mock_group_initial_rebalance_delay_ms(IntPtr mcluster, int delayMs);
    }
}
