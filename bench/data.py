"""Decode + transform speed on CamVid frames, and the synthetic generator's speed.

    python bench/data.py [PATH] [--n 100] [--size 180 240] [--crop 160 224] [--json bench/results/data.json]

PATH is a CamVid folder (SegNet layout; default ../shared/data/CamVid,
beside the checkout). Prints images/s for: decoding an image+mask pair with
torchvision.io and with PIL; decoding then resizing to the training size
(what `read_many` does once per split); the training transforms (random
scale, crop, flip) plus normalisation on in-memory uint8 tensors, at the
training size (what the DataLoader does every step); and decode + transform
together. Without a CamVid folder only the generator is measured.
Single-threaded torch, like one of two parallel training processes.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rate(fn, items, repeat: int = 3) -> float:
    """Best items/s of `repeat` passes of fn over items (after one warm-up item)."""
    fn(items[0])
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for it in items:
            fn(it)
        best = min(best, time.perf_counter() - t)
    return len(items) / best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", nargs="?", default=str(ROOT.parent / "shared/data/CamVid"))
    p.add_argument("--n", type=int, default=100, help="frames to time")
    p.add_argument("--size", type=int, nargs=2, default=(180, 240), metavar=("H", "W"), help="training size")
    p.add_argument("--crop", type=int, nargs=2, default=(160, 224), metavar=("H", "W"), help="training crop")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args(argv)

    import numpy as np
    import torch
    from PIL import Image

    from bench._common import machine, table, write_json
    from deal.data import synthetic as syn
    from deal.data.base import read_image_file, read_label_file, resize_pair
    from deal.data.camvid import CamVid
    from deal.data.transforms import apply, normalize, train_transforms

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", DeprecationWarning)  # torchvision.io's notice, once per call
    rows = []
    result = {"machine": machine(torch.device("cpu")), "torch": torch.__version__, "rows": rows}

    root = Path(a.path)
    if root.is_dir():
        ds = CamVid(root, test_split="test" if (root / "test").is_dir() else "val")
        ids = ds.ids("train")[: a.n]
        pairs = [ds.paths(i) for i in ids]
        h, w = ds.read(ids[0])[0].shape[-2:]
        result.update(path=str(root), frames=len(ids), frame_size=[int(h), int(w)], size=list(a.size), crop=list(a.crop))

        def tv_pair(pm):
            return read_image_file(pm[0]), read_label_file(pm[1])

        def pil_pair(pm):
            with Image.open(pm[0]) as im:
                img = torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)
            with Image.open(pm[1]) as im:
                mask = np.asarray(im)
            return img, mask

        def decode_resize(sid):
            return resize_pair(*ds.read(sid), a.size)

        images, masks = ds.read_many(ids, size=a.size)
        augment = train_transforms(tuple(a.crop), void_index=ds.info.void_index)

        def transform(k):
            img, mask = apply(augment, images[k], masks[k])
            return normalize(img), mask.long()

        def decode_transform(sid):
            img, mask = resize_pair(*ds.read(sid), a.size)
            img, mask = apply(augment, img, mask)
            return normalize(img), mask.long()

        torch.manual_seed(0)
        for name, fn, items in [
            ("decode pair, torchvision.io", tv_pair, pairs),
            ("decode pair, PIL", pil_pair, pairs),
            (f"decode + resize to {a.size[0]}x{a.size[1]} (read_many)", decode_resize, ids),
            (f"train transforms + normalise, {a.size[0]}x{a.size[1]} -> crop {a.crop[0]}x{a.crop[1]}", transform, list(range(len(ids)))),
            ("decode + resize + transforms + normalise", decode_transform, ids),
        ]:
            rows.append({"what": name, "images_per_s": round(rate(fn, items), 1)})
    else:
        print(f"{root}: no CamVid folder; timing the generator only")

    for h, w in ((64, 64), (96, 128), (360, 480)):
        n = 200 if h * w <= 96 * 128 else 30
        r = syn.bench(h, w, n=n)
        rows.append({"what": f"synthetic scenes {h}x{w}, generate", "images_per_s": round(r["generate_per_s"], 1)})
        rows.append({"what": f"synthetic scenes {h}x{w}, generate + write PNG pair", "images_per_s": round(r["write_per_s"], 1)})
        if (h, w) == (64, 64):  # the per-scene conditions (dataset.synthetic.conditions: long_tail)
            r = syn.bench(h, w, n=n, conditions="long_tail")
            rows.append({"what": f"synthetic scenes {h}x{w} long_tail, generate", "images_per_s": round(r["generate_per_s"], 1)})

    print(result["machine"], "| torch", result["torch"])
    print(table(rows, [("what", "what"), ("images_per_s", "images/s")]))
    write_json(a.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
