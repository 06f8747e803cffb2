using System.CommandLine;
using DlsganOod.Cli;

var root = new RootCommand("dlsgan-ood: out-of-distribution detection with the encoder of a DLSGAN");
foreach (var command in Commands.All()) root.Subcommands.Add(command);
return await root.Parse(args).InvokeAsync();
