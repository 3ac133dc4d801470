using System.Buffers.Binary;
using System.IO.Compression;

namespace BtrfsRefcheck.Tests.Cli;

/// <summary>A minimal PNG decoder for screenshots: 8-bit RGB or RGBA, not interlaced (what Chromium writes). Enough to
/// count colours, not a general decoder.</summary>
internal sealed class PngPixels
{
    public int Width { get; }
    public int Height { get; }
    private readonly byte[] _rgb; // 3 bytes a pixel

    private PngPixels(int w, int h, byte[] rgb) { Width = w; Height = h; _rgb = rgb; }

    public (byte R, byte G, byte B) this[int x, int y] => (_rgb[(y * Width + x) * 3], _rgb[(y * Width + x) * 3 + 1], _rgb[(y * Width + x) * 3 + 2]);

    public static PngPixels Read(byte[] png)
    {
        ReadOnlySpan<byte> sig = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0d, 0x0a, 0x1a, 0x0a];
        if (!png.AsSpan(0, 8).SequenceEqual(sig)) throw new InvalidDataException("not a PNG");
        int w = 0, h = 0, colourType = -1;
        var idat = new MemoryStream();
        for (int at = 8; at + 12 <= png.Length;)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            string type = System.Text.Encoding.ASCII.GetString(png, at + 4, 4);
            var data = png.AsSpan(at + 8, len);
            if (type == "IHDR")
            {
                w = BinaryPrimitives.ReadInt32BigEndian(data);
                h = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                if (data[8] != 8 || data[12] != 0) throw new InvalidDataException($"bit depth {data[8]}, interlace {data[12]}: not supported");
                colourType = data[9];
                if (colourType is not (2 or 6)) throw new InvalidDataException($"colour type {colourType}: not supported");
            }
            else if (type == "IDAT") idat.Write(data);
            else if (type == "IEND") break;
            at += 12 + len;
        }
        int bpp = colourType == 6 ? 4 : 3, stride = w * bpp;
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        var raw = new byte[(stride + 1) * h];
        z.ReadExactly(raw);
        var rgb = new byte[w * h * 3];
        var prev = new byte[stride];
        var cur = new byte[stride];
        for (int y = 0; y < h; y++)
        {
            int filter = raw[y * (stride + 1)];
            raw.AsSpan(y * (stride + 1) + 1, stride).CopyTo(cur);
            for (int i = 0; i < stride; i++)
            {
                int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                cur[i] = (byte)(cur[i] + filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"filter {filter}"),
                });
            }
            for (int x = 0; x < w; x++)
                for (int k = 0; k < 3; k++) rgb[(y * w + x) * 3 + k] = cur[x * bpp + k];
            (prev, cur) = (cur, prev);
        }
        return new PngPixels(w, h, rgb);
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
