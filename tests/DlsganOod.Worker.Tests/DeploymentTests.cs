using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DlsganOod.Worker.Tests;

public class DeploymentTests
{
    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "DlsganOod.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("repository root not found");
    }

    private static (int Code, string Output) RunTool(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { WorkingDirectory = RepoRoot(), RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    private static bool Has(string file, string args)
    {
        try
        {
            return RunTool(file, args).Code == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    [SkippableFact]
    public void Docker_compose_file_is_valid_with_and_without_the_training_profile()
    {
        var (tool, prefix) = Has("docker", "compose version") ? ("docker", "compose ") : Has("docker-compose", "version") ? ("docker-compose", "") : (null, null);
        Skip.If(tool is null, "neither `docker compose` nor `docker-compose` is installed (.ci/run installs docker-compose)");
        var plain = RunTool(tool!, prefix + "-f docker-compose.yml config -q");
        Assert.True(plain.Code == 0, plain.Output);
        var training = RunTool(tool!, prefix + "-f docker-compose.yml --profile training config --services");
        Assert.True(training.Code == 0, training.Output);
        foreach (var service in new[] { "kafka", "topic-init", "worker", "sample-producer", "prometheus", "grafana", "trainer" })
            Assert.Contains(service, training.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_metric_the_dashboard_queries_is_exported_by_the_worker()
    {
        var root = RepoRoot();
        var dashboard = File.ReadAllText(Path.Combine(root, "deploy/grafana/dashboards/dlsgan-ood.json"));
        using var _ = JsonDocument.Parse(dashboard);
        var exported = new GateMetrics().Registry;
        using var stream = new MemoryStream();
        await exported.CollectAndExportAsTextAsync(stream);
        var names = Regex.Matches(System.Text.Encoding.UTF8.GetString(stream.ToArray()), @"^# TYPE (\S+)", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToHashSet();
        var used = Regex.Matches(dashboard, @"dlsgan_ood_[a-z_]+").Select(m => Regex.Replace(m.Value, "_(bucket|sum|count)$", "")).Distinct().ToArray();
        Assert.NotEmpty(used);
        Assert.All(used, n => Assert.Contains(n, names));
        foreach (var required in new[] { "dlsgan_ood_ood_rate", "dlsgan_ood_drift", "dlsgan_ood_end_to_end_seconds", "dlsgan_ood_log_likelihood", "dlsgan_ood_model_info" })
            Assert.Contains(required, used);
    }
}
