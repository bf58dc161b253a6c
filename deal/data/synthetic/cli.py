"""The command line (``python -m deal.data.synthetic``): a figure of samples
(``save_figure``), class pixel shares (``class_shares``), the generator speed
(``bench``) and writing a dataset."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ...atomic import atomic_path
from .conditions import CONDITION_SETS, TABLES, draw_conditions
from .scene import DEFAULT_SIZE, SYNTHETIC_INFO, generate_scene
from .writer import write_synthetic


def class_shares(masks) -> np.ndarray:
    """Pixel share of each of the 12 values (11 classes + void) over ``masks``."""
    counts = np.zeros(12, dtype=np.int64)
    for m in masks:
        counts += np.bincount(np.asarray(m).ravel(), minlength=12)[:12]
    return counts / max(counts.sum(), 1)


def covering_indices(seed: int, n: int, conditions: str = "long_tail", limit: int = 100_000) -> list[int]:
    """``n`` scene indices whose conditions, together, show every value of
    every table at least once where ``n`` allows (greedy: each next scene
    adds the most values not yet shown; ties go to the lower index)."""
    missing = {(name, v) for name, table in TABLES.items() for v in table}
    draws = [draw_conditions(seed, i, conditions) for i in range(min(limit, max(4000, 50 * n)))]
    chosen: list[int] = []
    while len(chosen) < n:
        gain = [-1 if i in chosen else sum((k, getattr(c, k)) in missing for k in TABLES) for i, c in enumerate(draws)]
        best = int(np.argmax(gain))
        chosen.append(best)
        missing -= {(k, getattr(draws[best], k)) for k in TABLES}
    return chosen


def save_figure(path, seed: int = 0, n: int = 6, height: int = 96, width: int = 128, indices=None,
                conditions: str = "none", columns: int = 6) -> None:
    """A figure of ``n`` scenes (image above, mask in the CamVid palette
    below), ``columns`` a row. With conditions, each is titled with its
    conditions, and the default scenes are ``covering_indices``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if indices is None:
        indices = covering_indices(seed, n, conditions) if conditions != "none" else range(n)
    indices = list(indices)
    cols = min(columns, len(indices))
    groups = -(-len(indices) // cols)
    titled = conditions != "none"
    group_h = 2 * 2.3 * height / width + 0.55 if titled else 4.0
    fig, axes = plt.subplots(2 * groups, cols, figsize=(2.3 * cols, group_h * groups + 0.4), squeeze=False)
    for a in axes.ravel():
        a.set_axis_off()
    for j, idx in enumerate(indices):
        g, c = divmod(j, cols)
        img, mask = generate_scene(seed, idx, height, width, conditions)
        axes[2 * g, c].imshow(img, interpolation="nearest")
        axes[2 * g + 1, c].imshow(SYNTHETIC_INFO.colorize(mask), interpolation="nearest")
        title = f"seed {seed}, #{idx}"
        if titled:
            cond = draw_conditions(seed, idx, conditions)
            title = (f"#{idx}: {cond.lighting}, {cond.weather}\n{cond.scene.replace('_', ' ')}, {cond.camera} "
                     f"({cond.cam_height:.1f} m, f {cond.focal:.2f})")
        axes[2 * g, c].set_title(title, fontsize=7 if titled else 8)
    handles = [Patch(color=np.array(c) / 255, label=nm) for nm, c in zip(SYNTHETIC_INFO.class_names, SYNTHETIC_INFO.palette)]
    handles.append(Patch(color=np.array(SYNTHETIC_INFO.void_color) / 255, label="void"))
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.4 / (group_h * groups + 0.4), 1, 1), h_pad=0.3 if titled else None)
    path = Path(path)
    with atomic_path(path) as tmp:  # the temporary's name ends in .tmp: name the format
        fig.savefig(tmp, dpi=110, format=path.suffix[1:] or plt.rcParams["savefig.format"])
    plt.close(fig)


def bench(height: int, width: int, n: int = 200, seed: int = 0, conditions: str = "none") -> dict:
    """Generator-only and generate+PNG-write speed, images/s; the generator also
    per second of this process's CPU time, which other jobs on a shared machine
    disturb less than the wall clock."""
    import tempfile

    t, c = time.perf_counter(), time.process_time()
    for i in range(n):
        generate_scene(seed, i, height, width, conditions)
    gen, gen_cpu = n / (time.perf_counter() - t), n / (time.process_time() - c)
    with tempfile.TemporaryDirectory() as d:
        meta = write_synthetic(Path(d) / "s", seed, height, width, n, 0, 0, conditions=conditions)
    return {"height": height, "width": width, "n": n, "conditions": conditions,
            "generate_per_s": gen, "generate_per_cpu_s": gen_cpu, "write_per_s": meta["images_per_s"]}


def main(argv=None) -> int:
    import argparse

    from deal.data import synthetic  # the package: its docstring describes the generator

    p = argparse.ArgumentParser(prog="python -m deal.data.synthetic", description=synthetic.__doc__.split("\n\n")[0])
    p.add_argument("--figure", type=Path, help="write a figure of samples to this PNG")
    p.add_argument("--write", type=Path, help="write a dataset (CamVid layout) to this folder")
    p.add_argument("--bench", action="store_true", help="print the generator speed")
    p.add_argument("--stats", type=int, metavar="N", help="print class pixel shares over N scenes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--n", type=int, default=6, help="samples in the figure")
    p.add_argument("--indices", type=int, nargs="+", help="scene indices in the figure (default 0..n-1)")
    p.add_argument("--counts", type=int, nargs=3, default=(367, 101, 233), metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--conditions", choices=CONDITION_SETS, default="none",
                   help="per-scene conditions (dataset.synthetic.conditions); the figure then covers every condition")
    a = p.parse_args(argv)
    if a.figure:
        save_figure(a.figure, a.seed, a.n, a.height or 96, a.width or 128, indices=a.indices, conditions=a.conditions)
        print(f"wrote {a.figure}")
    if a.write:
        meta = write_synthetic(a.write, a.seed, a.height or DEFAULT_SIZE[0], a.width or DEFAULT_SIZE[1], *a.counts,
                               progress=True, conditions=a.conditions)
        print(f"wrote {a.write}: {sum(a.counts)} scenes at {meta['images_per_s']:.0f} images/s")
    if a.stats:
        h, w = a.height or DEFAULT_SIZE[0], a.width or DEFAULT_SIZE[1]
        masks = [generate_scene(a.seed, i, h, w, a.conditions)[1] for i in range(a.stats)]
        names = list(SYNTHETIC_INFO.class_names) + ["void"]
        for k in np.argsort(-class_shares(masks)):
            print(f"{names[k]:<12} {100 * class_shares(masks)[k]:5.1f}%")
    if a.bench:
        sizes = [(a.height, a.width)] if a.height and a.width else [(64, 64), (96, 128), (360, 480)]
        for h, w in sizes:
            r = bench(h, w, n=200 if h * w <= 96 * 128 else 40, seed=a.seed, conditions=a.conditions)
            print(f"{h}x{w}, conditions {a.conditions}: generate {r['generate_per_s']:.0f} images/s "
                  f"({r['generate_per_cpu_s']:.0f} per CPU-second), generate+write PNG {r['write_per_s']:.0f} images/s")
    return 0
