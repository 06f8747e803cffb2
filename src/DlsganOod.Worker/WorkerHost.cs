using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;

namespace DlsganOod.Worker;

/// <summary>
/// Builds the worker process: configuration (appsettings.json, then DLSGANOOD_* environment variables, then
/// --Section:Key=value arguments), validated options, the gate, and /metrics, /healthz, /readyz.
/// </summary>
public static class WorkerHost
{
    public const string EnvironmentPrefix = "DLSGANOOD_";

    public static IConfigurationRoot BuildConfiguration(string[] args, IDictionary<string, string?>? overrides = null)
    {
        var builder = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddJsonFile(Path.Combine(Environment.CurrentDirectory, "appsettings.json"), optional: true)
            .AddEnvironmentVariables(EnvironmentPrefix)
            .AddCommandLine(args);
        if (overrides is not null) builder.AddInMemoryCollection(overrides);
        return builder.Build();
    }

    /// <summary>Binds and validates every section; throws <see cref="GateConfigurationException"/> naming each bad setting.</summary>
    public static GateOptions BindOptions(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new GateOptions();
        try
        {
            configuration.GetSection(KafkaOptions.Section).Bind(options.Kafka);
            configuration.GetSection(ModelOptions.Section).Bind(options.Model);
            configuration.GetSection(BatchingOptions.Section).Bind(options.Batching);
            configuration.GetSection(MetricsOptions.Section).Bind(options.Metrics);
            configuration.GetSection(LimitsOptions.Section).Bind(options.Limits);
            configuration.GetSection(DeliveryOptions.Section).Bind(options.Delivery);
        }
        catch (InvalidOperationException ex)
        {
            // The binder names the key whose value did not convert (e.g. "Batching:MaxBatchSize").
            throw new GateConfigurationException([ex.Message + (ex.InnerException is { } inner ? " " + inner.Message : "")]);
        }
        // List-valued settings from the environment or the command line replace, not merge with, the file.
        var topics = configuration.GetSection("Kafka:InputTopics");
        if (topics.Value is { Length: > 0 } single) options.Kafka.InputTopics = single.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        else if (topics.GetChildren().Any()) options.Kafka.InputTopics = topics.GetChildren().Select(c => c.Value!).Where(v => v is not null).ToList();
        var errors = options.Validate();
        if (errors.Count > 0) throw new GateConfigurationException(errors);
        return options;
    }

    public static WebApplication Build(string[] args, IDictionary<string, string?>? overrides = null, Action<ILoggingBuilder>? logging = null)
    {
        var configuration = BuildConfiguration(args, overrides);
        var options = BindOptions(configuration);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddConfiguration(configuration);
        if (logging is not null) logging(builder.Logging);
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton(new GateMetrics());
        builder.Services.AddSingleton<ModelProvider>();
        builder.Services.AddSingleton<GateWorker>();
        // Registered first: at start it serves the latest promoted version before the gate consumes.
        builder.Services.AddSingleton<ModelControlListener>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ModelControlListener>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<GateWorker>());
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(options.Delivery.ShutdownTimeoutSeconds + 5));
        builder.WebHost.ConfigureKestrel(k =>
        {
            var address = options.Metrics.BindAddress is "*" ? System.Net.IPAddress.Any
                : options.Metrics.BindAddress is "localhost" ? System.Net.IPAddress.Loopback
                : System.Net.IPAddress.Parse(options.Metrics.BindAddress);
            k.Listen(address, options.Metrics.Port);
        });
        var app = builder.Build();
        var metrics = app.Services.GetRequiredService<GateMetrics>();
        var worker = app.Services.GetRequiredService<GateWorker>();
        app.MapMetrics("/metrics", metrics.Registry);
        app.MapGet("/healthz", () => worker.Failure is null ? Results.Text("ok") : Results.Text("failed: " + worker.Failure.Message, statusCode: 500));
        app.MapGet("/readyz", () => worker.IsReady ? Results.Text("ready") : Results.Text("not ready", statusCode: 503));
        // The model is loaded before the host starts: a bad model stops the service at start with its reason.
        app.Services.GetRequiredService<ModelProvider>().Load(options.Model.Path, score: options.Model.Score);
        return app;
    }
}
