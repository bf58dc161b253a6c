"""The published DEAL curves (Xie et al., ACCV 2020), as docs/method.md (#published-results) reads them off the
paper's figures (+-0.2 mIoU): ImageNet-pretrained MobileNetV2 DeepLabv3+ on a GPU,
single runs. The report draws them dashed beside ours for CamVid and Cityscapes.
"""

from __future__ import annotations

# dataset kind -> {"curves": {method: [(percent labeled, mIoU %), ...]}, "full": mIoU %, "note": str}
PUBLISHED = {
    "camvid": {
        "curves": {
            "deal_de": list(zip(range(10, 45, 5), (52.0, 55.9, 57.7, 58.8, 60.0, 61.3, 61.6))),
            "deal_ds": list(zip(range(10, 45, 5), (51.7, 55.5, 57.9, 59.0, 60.4, 60.9, 61.3))),
            "random": list(zip(range(10, 45, 5), (51.8, 53.9, 56.5, 57.6, 59.1, 59.7, 60.5))),
        },
        "full": 64.8,
        "note": "published (ImageNet weights, GPU, single runs)",
    },
    "cityscapes": {
        # only the end points are given: 300 and 1200 of the 2975 train images
        "curves": {"deal_ds": [(10, 50.7), (40, 62.0)], "random": [(10, 50.2), (40, 59.8)]},
        "full": 66.0,
        "note": "published end points (ImageNet weights, GPU, single runs)",
    },
}


def published(kind: str) -> dict | None:
    return PUBLISHED.get(kind)
