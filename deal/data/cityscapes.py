"""Cityscapes in its official layout, with the DEAL protocol as options.

```
root/
  leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
  gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
```

Label ids are mapped to the 19 train ids through ``cityscapesscripts``' label
table; every label whose train id is 255 or -1 is void. **Void is 255**
(``CITYSCAPES_INFO.void_index == 255``), the Cityscapes convention, so
``mask == info.void_index`` is void here as for every other kind.

Splits (the published protocol): ``"train"`` = the official train split minus
``val_holdout`` images chosen by ``seed``; ``"val"`` = those held-out images;
``"test"`` = the official val split (the official test split has no public
labels and is not used). With ``val_holdout=0`` there is no ``"val"``.
``size=(688, 688)`` resizes every sample on read (bilinear image, nearest mask).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .base import DatasetError, DatasetInfo, SegmentationDataset, _normalize_size, list_files

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
CITYSCAPES_VOID = 255


def _labels():
    from cityscapesscripts.helpers.labels import labels

    return labels


def _make_info() -> DatasetInfo:
    train = sorted((l for l in _labels() if 0 <= l.trainId < 255), key=lambda l: l.trainId)
    assert [l.trainId for l in train] == list(range(len(train))), "cityscapesscripts train ids not contiguous"
    return DatasetInfo(
        name="cityscapes",
        class_names=tuple(l.name for l in train),
        palette=tuple(tuple(l.color) for l in train),
        void_index=CITYSCAPES_VOID,
    )


def label_id_to_train_id() -> np.ndarray:
    """``int16[65536]`` lookup: Cityscapes label id -> train id (255 void),
    -1 for values that are no Cityscapes label id. Built from
    ``cityscapesscripts.helpers.labels``."""
    lut = np.full(65536, -1, dtype=np.int16)
    for l in _labels():
        if l.id < 0:  # 'license plate' (-1) never appears in labelIds PNGs
            continue
        lut[l.id] = l.trainId if 0 <= l.trainId < 255 else CITYSCAPES_VOID
    return lut


CITYSCAPES_INFO = _make_info()


class Cityscapes(SegmentationDataset):
    def __init__(self, root, val_holdout: int = 300, seed: int = 0, size=None):
        self.root = Path(root)
        self.info = CITYSCAPES_INFO
        self.val_holdout = int(val_holdout)
        self.seed = int(seed)
        self.size = _normalize_size(size)
        if self.val_holdout < 0:
            raise ValueError(f"val_holdout must be >= 0, got {val_holdout}")
        if not (self.root / "leftImg8bit").is_dir():
            raise DatasetError(
                f"{self.root / 'leftImg8bit'}: missing; expected the official Cityscapes layout "
                "(leftImg8bit/<split>/<city>/*_leftImg8bit.png, gtFine/<split>/<city>/*_gtFine_labelIds.png)"
            )
        self._official: dict[str, list[str]] = {}
        self._split_ids: dict[str, list[str]] | None = None

    def _official_ids(self, split: str) -> list[str]:
        if split not in self._official:
            base = self.root / "leftImg8bit" / split
            ids = []
            if base.is_dir():
                for city in sorted(p for p in base.iterdir() if p.is_dir()):
                    ids += [
                        f"leftImg8bit/{split}/{city.name}/{f.name}"
                        for f in list_files(city, (IMAGE_SUFFIX,))
                    ]
            self._official[split] = sorted(ids)
        return self._official[split]

    def _splits_map(self) -> dict[str, list[str]]:
        if self._split_ids is None:
            train = self._official_ids("train")
            if self.val_holdout > len(train):
                raise DatasetError(
                    f"{self.root / 'leftImg8bit/train'}: val_holdout={self.val_holdout} but only "
                    f"{len(train)} train images; lower val_holdout"
                )
            order = np.random.default_rng(self.seed).permutation(len(train))
            held = set(order[: self.val_holdout].tolist())
            m = {
                "train": [s for i, s in enumerate(train) if i not in held],
                "test": list(self._official_ids("val")),
            }
            if self.val_holdout > 0:
                m["val"] = [s for i, s in enumerate(train) if i in held]
            self._split_ids = m
        return self._split_ids

    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in ("train", "val", "test") if s in self._splits_map())

    def ids(self, split: str) -> list[str]:
        m = self._splits_map()
        if split not in m:
            raise DatasetError(
                f"{self.root}: Cityscapes has no split {split!r} (it has: {', '.join(m)}; "
                "'val' exists only with val_holdout > 0)"
            )
        return list(m[split])

    def paths(self, sample_id: str) -> tuple[Path, Path]:
        parts = sample_id.split("/")
        if len(parts) != 4 or parts[0] != "leftImg8bit" or not parts[3].endswith(IMAGE_SUFFIX):
            raise DatasetError(
                f"{sample_id}: not a Cityscapes sample id (expected leftImg8bit/<split>/<city>/*{IMAGE_SUFFIX})"
            )
        _, split, city, name = parts
        label = name[: -len(IMAGE_SUFFIX)] + LABEL_SUFFIX
        return self.root / sample_id, self.root / "gtFine" / split / city / label

    def label_lut(self) -> np.ndarray:
        return label_id_to_train_id()

    def _bad_values_text(self, bad: np.ndarray) -> str:
        shown = ", ".join(str(int(v)) for v in bad[:8]) + (" ..." if bad.size > 8 else "")
        return f"mask values {shown} are not Cityscapes label ids (0..33); is this a *_labelIds.png?"

    def index_problems(self, splits: Sequence[str]) -> list[str]:
        problems = []
        official = set()
        for s in splits:
            official.add("val" if s == "test" else "train")
        for split in sorted(official):
            gt = self.root / "gtFine" / split
            if not gt.is_dir():
                problems.append(f"{gt}: missing label folder for {self.root / 'leftImg8bit' / split}")
                continue
            images = {Path(i).name[: -len(IMAGE_SUFFIX)] for i in self._official_ids(split)}
            for city in sorted(p for p in gt.iterdir() if p.is_dir()):
                for f in list_files(city, (LABEL_SUFFIX,)):
                    if f.name[: -len(LABEL_SUFFIX)] not in images:
                        problems.append(
                            f"{f}: label without image "
                            f"{self.root / 'leftImg8bit' / split / city.name / (f.name[: -len(LABEL_SUFFIX)] + IMAGE_SUFFIX)}"
                        )
        return problems
