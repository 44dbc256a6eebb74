"""pngwrite.py — the smallest PNG writer, for the shell tests that need image files (Python's
standard library has none): `sys.path.insert(0, "tests"); from pngwrite import png`.
As a command it writes an image folder of colour classes, the shell tests' small data set:
    pngwrite.py DIR NAME... [--count N] [--seed S] [--size LO-HI | --size N] [--noise N]
                [--bright N] [--channels 0,1,2]
class k's images are noise in 0..noise with channel channels[k] raised to bright..255."""
import argparse
import os
import random
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


def colour_classes(root, names, count, seed, size, noise, bright, channels):
    """count random w x h RGB images per class under root/NAME/; size (lo, hi) or a fixed n"""
    random.seed(seed)
    for k, name in enumerate(names):
        os.makedirs(f"{root}/{name}")
        for i in range(count):
            w, h = (random.randint(*size), random.randint(*size)) if isinstance(size, tuple) else (size, size)
            px = []
            for _ in range(w * h):
                c = [random.randint(0, noise) for _ in range(3)]
                c[channels[k]] = random.randint(bright, 255)
                px += c
            png(f"{root}/{name}/{i:03d}.png", w, h, px, rgb=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="an image folder of colour classes")
    ap.add_argument("root")
    ap.add_argument("names", nargs="+")
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", default="12")
    ap.add_argument("--noise", type=int, default=80)
    ap.add_argument("--bright", type=int, default=150)
    ap.add_argument("--channels", default="0,1,2")
    a = ap.parse_args()
    lo, _, hi = a.size.partition("-")
    colour_classes(a.root, a.names, a.count, a.seed, (int(lo), int(hi)) if hi else int(lo), a.noise, a.bright,
                   [int(c) for c in a.channels.split(",")])
