"""Mask PNGs in every layout a person's tool may save (tests' helper): the same class ids stored
as 1-, 2-, 4-, 8- and 16-bit grey, as 1- to 8-bit palette indices, and as colours with alpha."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# layout -> (PNG bit depth, PNG colour type) of the file `write_index_mask` writes
INDEX_LAYOUTS = {
    "1": (1, 0),  # PIL mode "1": a viewer shows 0/255, the samples are 0/1
    "L;2": (2, 0), "L;4": (4, 0), "L": (8, 0), "I;16": (16, 0),
    "P;1": (1, 3), "P;2": (2, 3), "P;4": (4, 3), "P": (8, 3),
}


def png_bytes(samples: np.ndarray, depth: int, colour_type: int) -> bytes:
    """A PNG of `samples` (H x W, or H x W x channels) stored at `depth` bits, packed as the PNG
    spec says: what tools other than PIL write for 2- and 4-bit grey or 16-bit colour."""
    height, width = samples.shape[:2]
    values = samples.reshape(height, -1)
    wide = values.astype(">u2").view(np.uint8).reshape(height, values.shape[1], 2)  # big-endian 16-bit samples
    if depth == 16:
        rows = wide.reshape(height, -1)
    else:  # the low `depth` bits of each sample, packed most significant first
        bits = np.unpackbits(wide, axis=2)[..., 16 - depth:]
        rows = np.packbits(bits.reshape(height, -1), axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_index_mask(path: Path, labels: np.ndarray, layout: str) -> None:
    """`labels` (class ids) stored in `layout` (a key of INDEX_LAYOUTS), as PIL or a spec-following
    writer saves it; checks the file has the bit depth the layout names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    depth, colour_type = INDEX_LAYOUTS[layout]
    if layout == "1":
        Image.fromarray(labels.astype(bool)).save(path)
    elif layout == "I;16":
        Image.fromarray(labels.astype(np.uint16)).save(path)
    elif layout == "L":
        Image.fromarray(labels.astype(np.uint8), mode="L").save(path)
    elif colour_type == 3:  # PIL picks the palette PNG's depth from the palette's size
        image = Image.fromarray(labels.astype(np.uint8), mode="P")
        colours = 1 << depth
        image.putpalette([(37 * i + k * 80) % 256 for i in range(colours) for k in range(3)])
        image.save(path)
    else:
        path.write_bytes(png_bytes(labels, depth, colour_type))
    stored = path.read_bytes()[24:26]
    assert (stored[0], stored[1]) == (depth, colour_type), f"{path}: {layout} saved as {tuple(stored)}"
