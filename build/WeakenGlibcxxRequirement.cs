// MSBuild inline task (see Directory.Build.targets). Kept in its own file so it can be read and
// reviewed as C#; it is compiled by RoslynCodeTaskFactory at build time.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class DlsganOodWeakenGlibcxxRequirement : Task
{
    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string Version { get; set; } = "";

    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    private static readonly string[] HostLibStdCxx =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
    };

    public override bool Execute()
    {
        if (HostProvides(Version))
        {
            Log.LogMessage(MessageImportance.Low, "Host libstdc++ provides {0}; TorchSharp native left untouched.", Version);
            return true;
        }
        foreach (var item in Files)
        {
            var path = item.ItemSpec;
            try
            {
                var bytes = File.ReadAllBytes(path);
                var changed = Weaken(bytes, Version);
                if (changed < 0) { Log.LogWarning("{0}: not an ELF64 little-endian file; not patched.", path); continue; }
                if (changed == 0) continue;
                var tmp = path + ".weak.tmp";
                File.WriteAllBytes(tmp, bytes);
                File.Delete(path);
                File.Move(tmp, path);
                Log.LogMessage(MessageImportance.High, "Marked {0} weak in {1} (host libstdc++ lacks it).", Version, path);
            }
            catch (IOException ex)
            {
                Log.LogError("Could not patch {0}: {1}", path, ex.Message);
            }
        }
        return !Log.HasLoggedErrors;
    }

    private static bool HostProvides(string version)
    {
        var needle = Encoding.ASCII.GetBytes(version + "\0");
        foreach (var candidate in HostLibStdCxx)
        {
            if (!File.Exists(candidate)) continue;
            var data = File.ReadAllBytes(candidate);
            if (IndexOf(data, needle) >= 0) return true;
            return false;
        }
        return false;
    }

    private static int IndexOf(byte[] hay, byte[] needle)
    {
        for (var i = 0; i + needle.Length <= hay.Length; i++)
        {
            var j = 0;
            while (j < needle.Length && hay[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    /// <summary>Returns the number of requirements newly marked weak, or -1 if the file is not ELF64 LE.</summary>
    public static int Weaken(byte[] elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F'
            || elf[4] != 2 || elf[5] != 1)
            return -1;
        var shoff = (long)BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        var changed = 0;
        for (var s = 0; s < shnum; s++)
        {
            var sh = (int)(shoff + s * shentsize);
            if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed) continue;
            var offset = (int)BitConverter.ToUInt64(elf, sh + 0x18);
            var link = (int)BitConverter.ToUInt32(elf, sh + 0x28);
            var strtab = (int)BitConverter.ToUInt64(elf, (int)(shoff + link * shentsize) + 0x18);
            var need = offset;
            while (true)
            {
                int count = BitConverter.ToUInt16(elf, need + 2);
                var aux = need + (int)BitConverter.ToUInt32(elf, need + 8);
                for (var a = 0; a < count; a++)
                {
                    var name = ReadCString(elf, strtab + (int)BitConverter.ToUInt32(elf, aux + 8));
                    if (name == version)
                    {
                        var flags = BitConverter.ToUInt16(elf, aux + 4);
                        if ((flags & VerFlgWeak) == 0)
                        {
                            flags |= VerFlgWeak;
                            elf[aux + 4] = (byte)(flags & 0xff);
                            elf[aux + 5] = (byte)(flags >> 8);
                            changed++;
                        }
                    }
                    var nextAux = BitConverter.ToUInt32(elf, aux + 12);
                    if (nextAux == 0) break;
                    aux += (int)nextAux;
                }
                var next = BitConverter.ToUInt32(elf, need + 12);
                if (next == 0) break;
                need += (int)next;
            }
        }
        return changed;
    }

    private static string ReadCString(byte[] data, int start)
    {
        var end = start;
        while (end < data.Length && data[end] != 0) end++;
        return Encoding.ASCII.GetString(data, start, end - start);
    }
}
