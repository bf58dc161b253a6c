"""The published DEAL curves (Xie et al., ACCV 2020): every method of the paper's two result figures,
read off the figures with tools/read_published_figure.py (the authors' repository Shuai-Xie/DEAL,
web/res_cam.png and web/res_cit.png, as of commit 980730c). ImageNet-pretrained MobileNetV2
DeepLabv3+ on a GPU, single runs.

Reading accuracy: one pixel of these 385 x 341 figures is 0.041 (CamVid) and 0.048 (Cityscapes)
mIoU points; a point read from its marker is within about +-0.2 (a marker partly under others
reads off-centre), a point whose marker is hidden (read where its two line segments meet) within
about +-0.35 (tests/test_published.py reads back a figure drawn in their style); one point
(Entropy at 10 % on Cityscapes) is hidden with both its segments and is not given (None). The
dashed line of each figure is a share of the full-data mIoU (95 % on CamVid, 94 % on
Cityscapes), so `full` is that line divided by its share. The report draws the curves of the
methods a run also runs, dashed beside its own, for CamVid and Cityscapes.
"""

from __future__ import annotations

PERCENTS = tuple(range(10, 45, 5))


def _curve(values) -> list[tuple[int, float | None]]:
    return list(zip(PERCENTS, values))


# dataset kind -> {"curves": {method: [(percent labeled, mIoU % or None), ...]}, "full": mIoU %,
#                  "hidden": points read where their marker is hidden, "note": str}
PUBLISHED = {
    "camvid": {
        "curves": {
            "deal_ds": _curve((51.85, 55.50, 57.97, 59.07, 60.37, 60.94, 61.39)),
            "deal_de": _curve((52.07, 55.90, 57.77, 58.83, 60.05, 61.30, 61.63)),
            "vaal": _curve((51.60, 54.97, 57.12, 58.12, 59.70, 60.65, 61.14)),
            "entropy": _curve((51.80, 53.75, 56.96, 57.43, 59.32, 59.96, 61.22)),
            "qbc": _curve((51.68, 54.48, 56.92, 58.30, 59.44, 60.41, 61.02)),
            "coreset": _curve((52.21, 54.77, 56.84, 57.57, 59.03, 59.92, 60.82)),
            "random": _curve((52.01, 54.04, 56.59, 57.71, 59.25, 59.76, 60.57)),
        },
        "full": round(61.63 / 0.95, 1),  # the dashed "95 % Full" line at 61.63
        "hidden": ("deal_ds@10", "entropy@30"),
        "note": "published (ImageNet weights, GPU, single runs; read off the figure, +-0.2)",
    },
    "cityscapes": {
        "curves": {
            "deal_ds": _curve((50.81, 55.25, 57.08, 58.77, 60.12, 61.33, 62.01)),
            "deal_de": _curve((51.05, 54.96, 57.32, 59.06, 59.98, 60.99, 61.67)),
            "vaal": _curve((50.78, 54.07, 55.83, 57.81, 58.63, 60.12, 60.90)),
            "entropy": _curve((None, 54.73, 56.84, 58.53, 59.83, 60.73, 61.48)),
            "qbc": _curve((50.88, 54.57, 56.60, 58.14, 59.01, 60.37, 61.28)),
            "coreset": _curve((50.61, 53.46, 55.54, 57.28, 58.39, 59.26, 60.66)),
            "random": _curve((50.28, 53.08, 55.13, 56.67, 57.81, 58.84, 59.86)),
        },
        "full": round(62.01 / 0.94, 1),  # the dashed "94 % Full" line at 62.01
        "hidden": ("deal_ds@10", "vaal@10", "entropy@15"),
        "note": "published (ImageNet weights, GPU, single runs; read off the figure, +-0.2)",
    },
}


def published(kind: str) -> dict | None:
    return PUBLISHED.get(kind)
