"""pngwrite.py — the smallest PNG writer, for the shell tests that need image files (Python's
standard library has none): `sys.path.insert(0, "tests"); from pngwrite import png`."""
import struct
import zlib


def png(path, w, h, pixels, rgb=False):
    """Writes w x h 8-bit pixels: a flat sequence, gray, or R, G, B per pixel when rgb."""
    row = w * (3 if rgb else 1)
    pixels = bytes(pixels)
    raw = b"".join(b"\x00" + pixels[y * row:(y + 1) * row] for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2 if rgb else 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
