using static TorchSharp.torch;
var a = ones(3, 3);
System.Console.WriteLine((a.matmul(a)).sum().item<float>());
