namespace DlsganOod.Worker.Tests;

public class GateOptionsTests
{
    private static Dictionary<string, string?> Valid() => new()
    {
        ["Kafka:BootstrapServers"] = "localhost:9092",
        ["Model:Path"] = "",
    };

    [Fact]
    public void Defaults_with_a_bootstrap_server_are_valid()
    {
        var options = WorkerHost.BindOptions(WorkerHost.BuildConfiguration([], Valid()));
        Assert.Equal("dlsgan-ood.alerts", options.Kafka.AlertTopic);
        Assert.Equal(["images"], options.Kafka.InputTopics);
    }

    [Theory]
    [InlineData("Kafka:BootstrapServers", "", "Kafka:BootstrapServers")]
    [InlineData("Kafka:BootstrapServers", "nohostport", "Kafka:BootstrapServers")]
    [InlineData("Batching:MaxBatchSize", "0", "Batching:MaxBatchSize")]
    [InlineData("Batching:ChannelCapacity", "3", "Batching:ChannelCapacity")]
    [InlineData("Kafka:AlertTopic", "bad topic!", "Kafka:AlertTopic")]
    [InlineData("Kafka:InputTopics:0", "^([unclosed", "Kafka:InputTopics:0")]
    [InlineData("Kafka:SecurityProtocol", "SASL_SSL", "Kafka:SaslMechanism")]
    [InlineData("Metrics:BindAddress", "not-an-ip", "Metrics:BindAddress")]
    [InlineData("Delivery:ShutdownTimeoutSeconds", "0", "Delivery:ShutdownTimeoutSeconds")]
    [InlineData("Model:Path", "/nonexistent/model", "Model:Path")]
    [InlineData("Kafka:QuarantineTopic", "dlsgan-ood.alerts", "Kafka:AlertTopic")]
    public void A_bad_setting_fails_at_start_naming_it(string key, string value, string named)
    {
        var settings = Valid();
        settings[key] = value;
        var ex = Assert.Throws<GateConfigurationException>(() => WorkerHost.BindOptions(WorkerHost.BuildConfiguration([], settings)));
        Assert.Contains(ex.Errors, e => e.StartsWith(named, StringComparison.Ordinal));
    }

    [Fact]
    public void A_value_that_does_not_convert_names_the_key()
    {
        var settings = Valid();
        settings["Batching:MaxWaitMs"] = "soon";
        var ex = Assert.Throws<GateConfigurationException>(() => WorkerHost.BindOptions(WorkerHost.BuildConfiguration([], settings)));
        Assert.Contains("Batching:MaxWaitMs", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Environment_overrides_files_and_the_command_line_overrides_the_environment()
    {
        const string key = "DLSGANOOD_Metrics__DriftWindow";
        Environment.SetEnvironmentVariable(key, "777");
        Environment.SetEnvironmentVariable("DLSGANOOD_Kafka__BootstrapServers", "env-host:9092");
        try
        {
            var fromEnv = WorkerHost.BindOptions(WorkerHost.BuildConfiguration([]));
            Assert.Equal(777, fromEnv.Metrics.DriftWindow);
            Assert.Equal("env-host:9092", fromEnv.Kafka.BootstrapServers);
            var fromArgs = WorkerHost.BindOptions(WorkerHost.BuildConfiguration(["--Metrics:DriftWindow=555", "--Kafka:InputTopics=a,b"]));
            Assert.Equal(555, fromArgs.Metrics.DriftWindow);
            Assert.Equal(["a", "b"], fromArgs.Kafka.InputTopics);
        }
        finally
        {
            Environment.SetEnvironmentVariable(key, null);
            Environment.SetEnvironmentVariable("DLSGANOOD_Kafka__BootstrapServers", null);
        }
    }

    [Fact]
    public void Sasl_settings_become_client_settings()
    {
        var o = new GateOptions();
        o.Kafka.BootstrapServers = "b:9093";
        o.Kafka.SecurityProtocol = "SASL_SSL";
        o.Kafka.SaslMechanism = "SCRAM-SHA-512";
        o.Kafka.SaslUsername = "gate";
        o.Kafka.SaslPassword = "s3cret";
        var c = KafkaGate.ConsumerConfig(o);
        Assert.Equal(Confluent.Kafka.SecurityProtocol.SaslSsl, c.SecurityProtocol);
        Assert.Equal(Confluent.Kafka.SaslMechanism.ScramSha512, c.SaslMechanism);
        Assert.Equal("gate", c.SaslUsername);
        Assert.False(c.EnableAutoCommit);
        Assert.False(c.EnableAutoOffsetStore);
        var p = KafkaGate.ProducerConfig(o, null);
        Assert.True(p.EnableIdempotence);
        Assert.Equal(Confluent.Kafka.Acks.All, p.Acks);
    }
}
