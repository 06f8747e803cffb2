namespace DlsganOod.Core;
internal static class Placeholder { }
