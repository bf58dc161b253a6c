"""Read the published DEAL curves off the paper's result figures (the PNGs in the authors' repository).

    python tools/read_published_figure.py res_cam.png --y-ticks 52 54 56 58 60 62
    python tools/read_published_figure.py res_cit.png --y-ticks 50 52 54 56 58 60 62

The figures (Shuai-Xie/DEAL, web/res_cam.png and web/res_cit.png: CamVid and
Cityscapes, 385 x 341 pixels, seaborn's default palette) are not in this
repository; deal/published.py holds what this script read from them. The axes
are calibrated on the light grey grid lines (x: 10, 15, ..., 40 % labeled; y: the
ticks given), and each method's point at each x is the median row of the pixels
of its colour within 3 pixels of that grid column (its legend sample left out).
Where a marker is hidden under markers drawn later (the methods overlap at 10 %),
the point is the
intersection of the method's two line segments that meet there, each fitted on
its own colour's pixels 5 to 24 pixels away; those points are listed as hidden,
and a point whose marker and both segments are hidden is unreadable (null). One pixel
is 0.04-0.05 mIoU points on these axes; markers are about 7 pixels wide. Read back
from a figure drawn in the same style (tests/test_published.py): within 0.2 from a
marker, 0.35 where the marker is hidden.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image

# seaborn's "deep" palette, in the legend's order of both figures
COLOURS = {
    "deal_ds": (76, 114, 176), "deal_de": (221, 132, 82), "vaal": (85, 168, 104), "entropy": (196, 78, 82),
    "qbc": (129, 114, 179), "coreset": (147, 120, 96), "random": (218, 139, 195),
}
GRID = (205, 205, 205)
X_TICKS = (10, 15, 20, 25, 30, 35, 40)


def grid_lines(image: np.ndarray, axis: int) -> list[float]:
    """Rows (axis 0) or columns (axis 1) that are grid lines: partly the grid's grey (the legend and
    the curves cover some), the outermost two (the plot's frame) left out."""
    grey = (np.abs(image - np.array(GRID)).sum(-1) <= 3)
    share = grey.mean(axis=1 - axis)
    return [float(i) for i in np.flatnonzero(share > 0.15)][1:-1]


def mask(image: np.ndarray, colour) -> np.ndarray:
    """The pixels of `colour`, without its legend sample: a row holding a run of 15 or more of them
    (no curve is that flat on these axes) is the legend's line, not the curve."""
    found = np.abs(image - np.array(colour)).sum(-1) <= 40
    for row in np.flatnonzero(found.any(1)):
        padded = np.concatenate([[0], found[row].astype(int), [0]])
        edges = np.flatnonzero(np.diff(padded))
        for start, stop in zip(edges[::2], edges[1::2]):
            if stop - start >= 15:
                found[max(0, row - 5):row + 6, max(0, start - 6):stop + 6] = False  # the sample and its marker
    return found


def read(path: str, y_ticks: list[float]) -> dict:
    image = np.array(Image.open(path).convert("RGB")).astype(int)
    rows, cols = grid_lines(image, 0), grid_lines(image, 1)
    if len(rows) != len(y_ticks) or len(cols) != len(X_TICKS):
        raise SystemExit(f"{path}: found {len(rows)} horizontal and {len(cols)} vertical grid lines; "
                         f"expected {len(y_ticks)} and {len(X_TICKS)}")
    # rows grow downwards; ticks ascend upwards
    fit_y = np.polyfit(sorted(rows, reverse=True), sorted(y_ticks), 1)
    value = lambda row: float(np.polyval(fit_y, row))  # noqa: E731
    out = {"pixel_miou": float(abs(fit_y[0])), "methods": {}, "hidden": [], "unreadable": []}
    for method, colour in COLOURS.items():
        m = mask(image, colour)
        points = []
        for tick, col in zip(X_TICKS, cols):
            c = int(round(col))
            ys, xs = np.nonzero(m[:, c - 3:c + 4])
            if len(ys) >= 2:
                points.append((tick, round(value(float(np.median(ys))), 2)))
                continue
            segments = []
            for side in (-1, 1):
                lo, hi = sorted((c + side * 5, c + side * 24))
                ys, xs = np.nonzero(m[:, lo:hi + 1])
                if len(ys) >= 2:
                    segments.append(np.polyfit(xs + lo, ys, 1))
            if not segments:  # marker and both segments hidden: not readable
                points.append((tick, None))
                out["unreadable"].append(f"{method}@{tick}")
                continue
            row = float(np.mean([np.polyval(s, c) for s in segments]))
            points.append((tick, round(value(row), 2)))
            out["hidden"].append(f"{method}@{tick}")
        out["methods"][method] = points
    dashed = [r for r in range(image.shape[0]) if (np.abs(image[r] - 128).sum(-1) <= 10).sum() > 60]
    if dashed:
        out["full_line"] = round(value(float(np.mean(dashed))), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure")
    parser.add_argument("--y-ticks", type=float, nargs="+", required=True, help="the y axis' tick values, ascending")
    args = parser.parse_args()
    print(json.dumps(read(args.figure, args.y_ticks), indent=1))


if __name__ == "__main__":
    main()
