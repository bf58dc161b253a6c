"""Writing scenes to disk: a plain-zlib PNG encoder, ``write_synthetic``
(the CamVid SegNet layout, built in a temporary folder that replaces the old
one whole) and ``SyntheticStreets``, the reader of such a folder."""

from __future__ import annotations

import csv
import json
import struct
import time
import zlib
from dataclasses import fields
from pathlib import Path

import numpy as np

from ...atomic import atomic_dir
from ..camvid import CamVid
from .conditions import CONDITION_SETS, TABLES, Conditions, draw_conditions
from .scene import DEFAULT_SIZE, SPLIT_OFFSETS, SYNTHETIC_INFO, generate_scene

#: The columns of conditions.csv: the sample id (as ``SyntheticStreets.ids``
#: gives it), its split and scene index, then the scene's conditions.
CONDITION_COLUMNS = ("id", "split", "index") + tuple(f.name for f in fields(Conditions))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(arr: np.ndarray, level: int = 1) -> bytes:
    """8-bit grey (HxW) or RGB (HxWx3) PNG bytes. Plain zlib: about twice as
    fast as PIL for small images, and no torch import."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape[:2]
    colour_type = 0 if arr.ndim == 2 else 2
    rows = np.empty((h, 1 + arr[0].size), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None
    rows[:, 1:] = arr.reshape(h, -1)
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)),
        _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)),
        _png_chunk(b"IEND", b""),
    ])


def _encode_png(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(encode_png(arr))


def _write_pair(img_path: Path, img: np.ndarray, mask_path: Path, mask: np.ndarray) -> None:
    _encode_png(img_path, img)
    _encode_png(mask_path, mask)


def write_synthetic(
    root,
    seed: int = 0,
    height: int = DEFAULT_SIZE[0],
    width: int = DEFAULT_SIZE[1],
    n_train: int = 367,
    n_val: int = 101,
    n_test: int = 233,
    progress: bool = False,
    conditions: str = "none",
) -> dict:
    """Write ``n_train/n_val/n_test`` scenes in the CamVid SegNet layout at
    ``root`` (``train/``, ``trainannot/``, ...; files ``synth_00000.png``) plus
    ``synthetic.json`` with the parameters. Split ``s``, file ``i`` is scene
    ``SPLIT_OFFSETS[s] + i``. With ``conditions`` other than ``"none"``,
    ``conditions.csv`` holds each scene's conditions (``CONDITION_COLUMNS``)
    and ``synthetic.json`` their tables; with ``"none"`` the folder is what
    it was before conditions existed. The folder is built under a temporary
    name beside ``root`` and renamed into place, replacing an older ``root``.
    Returns the metadata written (with the measured ``images_per_s``)."""
    root = Path(root)
    counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
    if any(n < 0 for n in counts.values()):
        raise ValueError(f"split sizes must be >= 0, got {counts}")
    if conditions not in CONDITION_SETS:
        raise ValueError(f"conditions: {conditions!r} is not one of {', '.join(CONDITION_SETS)}")
    rows = []
    t0 = time.perf_counter()
    # built as .<name>.<pid>-<random>.tmp beside root: what clear_stale removes when the writer was killed
    with atomic_dir(root) as tmp:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=sum(counts.values()), desc="synthetic scenes", unit="img", disable=None)
        # PNG encoding (zlib) and file writes release the GIL: two writer
        # threads overlap them with the drawing of the next scenes.
        from concurrent.futures import ThreadPoolExecutor

        pending = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            for split, n in counts.items():
                if n == 0:
                    continue
                (tmp / split).mkdir()
                (tmp / f"{split}annot").mkdir()
                for i in range(n):
                    index = SPLIT_OFFSETS[split] + i
                    name = f"synth_{i:05d}.png"
                    cond = draw_conditions(seed, index, conditions)
                    img, mask = generate_scene(seed, index, height, width, conditions if cond is None else cond)
                    if cond is not None:
                        rows.append({"id": f"{split}/{name}", "split": split, "index": index, **cond.row()})
                    pending.append(pool.submit(_write_pair, tmp / split / name, img, tmp / f"{split}annot" / name, mask))
                    if len(pending) > 64:  # bounded memory; surfaces write errors early
                        pending.pop(0).result()
                    if bar is not None:
                        bar.update(1)
            for f in pending:
                f.result()
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - t0
        meta = {
            "generator": "deal.data.synthetic",
            "seed": int(seed),
            "height": int(height),
            "width": int(width),
            "counts": counts,
            "split_offsets": SPLIT_OFFSETS,
            "info": SYNTHETIC_INFO.to_dict(),
        }
        if conditions != "none":
            meta["conditions"] = conditions
            meta["condition_tables"] = TABLES
            with open(tmp / "conditions.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=CONDITION_COLUMNS, lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
        (tmp / "synthetic.json").write_text(json.dumps(meta, indent=2) + "\n")
    total = sum(counts.values())
    return dict(meta, seconds=elapsed, images_per_s=total / elapsed if elapsed > 0 else float("inf"))


def read_conditions(root):
    """The conditions of the scenes of a folder written by ``write_synthetic``:
    a pandas DataFrame indexed by sample id (``CONDITION_COLUMNS``), or None
    where it was written without conditions."""
    path = Path(root) / "conditions.csv"
    if not path.is_file():
        return None
    import pandas as pd

    return pd.read_csv(path, index_col="id")


class SyntheticStreets(CamVid):
    """A folder written by ``write_synthetic``: CamVid layout, synthetic info."""

    def __init__(self, root, test_split: str = "test"):
        super().__init__(root, test_split=test_split, info=SYNTHETIC_INFO)

    def conditions(self):
        """Each scene's conditions (``read_conditions``), or None."""
        return read_conditions(self.root)
