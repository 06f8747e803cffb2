using System.CommandLine;
using System.Globalization;
using Confluent.Kafka;
using Microsoft.Extensions.Configuration;
using DlsganOod.Core.Corruptions;
using DlsganOod.Core.Data;
using DlsganOod.Core.Evaluation;
using DlsganOod.Core.Model;
using DlsganOod.Core.Registry;
using DlsganOod.Core.Scoring;
using DlsganOod.Worker;
using Spectre.Console;

namespace DlsganOod.Cli;

/// <summary>`publish` and `models list|show|promote|rollback|shadow|retire`: versions in a registry folder, states on the control topic.</summary>
internal static class LifecycleCommands
{
    public static readonly Option<string> Registry = new("--registry") { Description = "Registry folder (default: $DLSGANOOD_REGISTRY or ./registry)", DefaultValueFactory = _ => ModelRegistry.DefaultRoot() };
    public static readonly Option<string> Name = new("--name") { Description = "Model name", DefaultValueFactory = _ => "default" };
    public static readonly Option<string?> Bootstrap = new("--bootstrap-servers") { Description = "Kafka (default: Kafka:BootstrapServers from configuration)" };
    public static readonly Option<string> Topic = new("--topic") { Description = "Control topic", DefaultValueFactory = _ => ModelControl.DefaultTopic };

    private static ClientConfig Connection(ParseResult parse)
    {
        var config = WorkerHost.BuildConfiguration([]);
        var kafka = new KafkaOptions();
        config.GetSection(KafkaOptions.Section).Bind(kafka);
        if (parse.GetValue(Bootstrap) is { } b) kafka.BootstrapServers = b;
        return KafkaGate.SecurityConfig(kafka);
    }

    public static Command Publish()
    {
        var fpr = new Option<double>("--fpr") { Description = "Calibration target false-positive rate", DefaultValueFactory = _ => 0.01 };
        var skipEvaluation = new Option<bool>("--skip-evaluation") { Description = "Publish without the evaluation summary" };
        var command = new Command("publish", "Calibrate a checkpoint on held-out digits, evaluate it, write it as a new immutable version and announce it as a candidate")
        {
            ModelCommands.ModelOption, Registry, Name, fpr, skipEvaluation, Bootstrap, Topic, DataCommand.CacheOption,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var published = PublishCheckpoint(ModelLocator.Resolve(parse.GetValue(ModelCommands.ModelOption)), parse, parse.GetValue(Name)!,
                parse.GetValue(fpr), parse.GetValue(skipEvaluation));
            Console.WriteLine($"published {published.Name}/{published.Version} at {published.Path} (sha256 {published.Sha256}); announced as candidate");
            return 0;
        }));
        return command;
    }

    /// <summary>Also used by `train --publish`.</summary>
    public static PublishedVersion PublishCheckpoint(string checkpointPath, ParseResult parse, string name, double fpr, bool skipEvaluation)
    {
        var cache = parse.GetValue(DataCommand.CacheOption);
        var splits = DataCommand.LoadMnist(cache);
        var staging = Path.Combine(Path.GetTempPath(), "dlsgan-ood-publish-" + Guid.NewGuid().ToString("N"));
        Checkpoint.Export(checkpointPath, staging);
        try
        {
            Dictionary<string, Dictionary<string, double>> evaluation = new();
            using (var checkpoint = Checkpoint.Load(staging))
            {
                // Score statistics on the training images, thresholds on held-out ones: never on the test split.
                var scores = OodScoreModel.Fit(ScoreFeatures.Compute(checkpoint.Model, splits.Fit), splits.Fit.Fingerprint());
                var features = ScoreFeatures.Compute(checkpoint.Model, splits.Validation);
                var fingerprint = splits.Validation.Fingerprint();
                var records = OodScoreModel.Names.Select(n => Calibration.CalibrateFeatures(scores, features, n, fpr, fingerprint, $"{NpmMnist.PackageSpec} validation split")).ToList();
                Checkpoint.UpdateMetadata(staging, m => m with
                {
                    Calibration = records.First(r => r.Score == OodScoreModel.LogLikelihood),
                    ScoreCalibrations = records.Where(r => r.Score != OodScoreModel.LogLikelihood).ToDictionary(r => r.Score, r => r),
                }, scores.Save);
            }
            if (!skipEvaluation)
            {
                using var calibrated = Checkpoint.Load(staging);
                var report = OodEvaluation.Run(calibrated, splits.Test, "test", MnistC.PaperAuroc.Keys.ToArray(), 0, null, CliSupport.Info,
                    OodScoreModel.LogLikelihood, OodScoreModel.Load(staging));
                evaluation = report.ScoreComparison;
            }
            var registry = new ModelRegistry(parse.GetValue(Registry)!);
            var published = registry.Publish(staging, name, evaluation, Path.GetFullPath(checkpointPath));
            ModelControl.Announce(Connection(parse), parse.GetValue(Topic)!, new ModelEvent(published.Name, published.Version, published.Path, published.Sha256,
                published.Record.Calibration!.Threshold, ModelEvent.Candidate, false, DateTimeOffset.UtcNow));
            return published;
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    public static Command Models()
    {
        var models = new Command("models", "Model versions: list, show, promote, rollback, shadow, retire");
        var version = new Argument<string>("version") { Description = "Version, e.g. v2" };

        var list = new Command("list", "Versions in the registry with their state on the control topic") { Registry, Name, Bootstrap, Topic };
        list.SetAction(parse => CliSupport.Run(() =>
        {
            var registry = new ModelRegistry(parse.GetValue(Registry)!);
            var name = parse.GetValue(Name)!;
            var events = ModelControl.ReadAll(Connection(parse), parse.GetValue(Topic)!, TimeSpan.FromSeconds(10));
            var states = ModelControl.LatestPerVersion(events, name);
            var current = ModelControl.CurrentPromoted(events, name);
            var table = new Table().AddColumns("version", "state", "created", "threshold", "sha256");
            foreach (var v in registry.Versions(name))
            {
                PublishedVersion opened;
                try
                {
                    opened = registry.Open(name, v);
                }
                catch (CheckpointException ex)
                {
                    table.AddRow(v, "[red]damaged[/]", "–", "–", Markup.Escape(ex.Message.Length > 60 ? ex.Message[..60] + "…" : ex.Message));
                    continue;
                }
                var state = states.TryGetValue(v, out var e) ? e.State + (e.Shadow ? " (shadow)" : "") : "unannounced";
                if (current?.Version == v) state += " ← serving";
                table.AddRow(v, state, opened.Record.CreatedAt.ToString("u", CultureInfo.InvariantCulture),
                    opened.Record.Calibration?.Threshold.ToString("G6", CultureInfo.InvariantCulture) ?? "–", opened.Sha256[..12]);
            }
            AnsiConsole.Write(table);
            return 0;
        }));

        var show = new Command("show", "A version's record: calibration, fingerprints, evaluation") { version, Registry, Name };
        show.SetAction(parse => CliSupport.Run(() =>
        {
            var opened = new ModelRegistry(parse.GetValue(Registry)!).Open(parse.GetValue(Name)!, parse.GetValue(version)!);
            Console.WriteLine(File.ReadAllText(Path.Combine(opened.Path, ModelRegistry.VersionFile)));
            Console.WriteLine($"sha256 (manifest): {opened.Sha256}");
            return 0;
        }));

        Command StateCommand(string verb, string description, Func<ParseResult, List<ModelEvent>, ModelEvent> decide)
        {
            var command = new Command(verb, description) { Registry, Name, Bootstrap, Topic };
            if (verb != "rollback") command.Arguments.Add(version);
            command.SetAction(parse => CliSupport.Run(() =>
            {
                var connection = Connection(parse);
                var events = ModelControl.ReadAll(connection, parse.GetValue(Topic)!, TimeSpan.FromSeconds(10));
                var e = decide(parse, events);
                ModelControl.Announce(connection, parse.GetValue(Topic)!, e);
                Console.WriteLine($"{e.Name}/{e.Version}: {e.State}{(e.Shadow ? " (shadow)" : "")}");
                return 0;
            }));
            return command;
        }

        ModelEvent EventFor(ParseResult parse, List<ModelEvent> events, string state, bool shadow)
        {
            var name = parse.GetValue(Name)!;
            var v = parse.GetValue(version)!;
            var registry = new ModelRegistry(parse.GetValue(Registry)!);
            if (state == ModelEvent.Retired)
            {
                // Retiring must work for a damaged version too: no verification, just the announcement.
                var path = registry.PathOf(name, v);
                if (!Directory.Exists(path)) throw new ArgumentException($"unknown version {name}/{v} (registry {registry.Root})");
                var manifest = Path.Combine(path, Checkpoint.ManifestFile);
                return new ModelEvent(name, v, path, File.Exists(manifest) ? Checkpoint.Sha256File(manifest) : "", double.NaN, state, false, DateTimeOffset.UtcNow);
            }
            var latest = ModelControl.LatestPerVersion(events, name);
            if (latest.TryGetValue(v, out var previous) && previous.State == ModelEvent.Retired)
                throw new ArgumentException($"{name}/{v} is retired and cannot be {(shadow ? "shadowed" : "promoted")}");
            // Opening checks every file against the manifest: a tampered version cannot be promoted.
            var opened = registry.Open(name, v);
            return new ModelEvent(name, v, opened.Path, opened.Sha256, opened.Record.Calibration!.Threshold, state, shadow, DateTimeOffset.UtcNow);
        }

        models.Subcommands.Add(list);
        models.Subcommands.Add(show);
        models.Subcommands.Add(StateCommand("promote", "Serve this version on every worker", (p, ev) => EventFor(p, ev, ModelEvent.Promoted, false)));
        models.Subcommands.Add(StateCommand("shadow", "Load this candidate beside the served model on every worker (metrics only)", (p, ev) => EventFor(p, ev, ModelEvent.Candidate, true)));
        models.Subcommands.Add(StateCommand("retire", "Never serve this version again", (p, ev) => EventFor(p, ev, ModelEvent.Retired, false)));
        models.Subcommands.Add(StateCommand("rollback", "Serve the previously promoted version again (its own threshold included)", (parse, events) =>
        {
            var name = parse.GetValue(Name)!;
            var promotions = events.Where(e => e.Name == name && e.State == ModelEvent.Promoted).ToList();
            var current = ModelControl.CurrentPromoted(events, name) ?? throw new ArgumentException($"{name}: nothing is promoted");
            var latest = ModelControl.LatestPerVersion(events, name);
            var previous = promotions.Where(e => e.Version != current.Version && latest[e.Version].State != ModelEvent.Retired).LastOrDefault()
                ?? throw new ArgumentException($"{name}: no earlier promoted version to roll back to");
            var opened = new ModelRegistry(parse.GetValue(Registry)!).Open(name, previous.Version);
            // The rolled-back version goes back to candidate so "latest promoted" is unambiguous.
            ModelControl.Announce(Connection(parse), parse.GetValue(Topic)!, current with { State = ModelEvent.Candidate, Shadow = false, At = DateTimeOffset.UtcNow });
            return new ModelEvent(name, previous.Version, opened.Path, opened.Sha256, opened.Record.Calibration!.Threshold, ModelEvent.Promoted, false, DateTimeOffset.UtcNow);
        }));
        return models;
    }
}
