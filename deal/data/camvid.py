"""CamVid in the SegNet layout: 11 classes, label 11 is void.

```
root/
  train/  trainannot/     RGB frames and label PNGs with the same file names
  val/    valannot/
  test/   testannot/      optional; CamVid(root, test_split="val") reads val as test
```

Sample ids are image paths relative to the root, e.g. ``"train/0001TP_006690.png"``;
the mask of ``<split>/<name>`` is ``<split>annot/<name>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .base import DatasetError, DatasetInfo, SegmentationDataset, list_files

CAMVID_CLASSES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)

#: The standard CamVid (SegNet) colours of the 11 classes.
CAMVID_PALETTE = (
    (128, 128, 128),  # Sky
    (128, 0, 0),  # Building
    (192, 192, 128),  # Pole
    (128, 64, 128),  # Road
    (60, 40, 222),  # Pavement
    (128, 128, 0),  # Tree
    (192, 128, 128),  # SignSymbol
    (64, 64, 128),  # Fence
    (64, 0, 128),  # Car
    (64, 64, 0),  # Pedestrian
    (0, 128, 192),  # Bicyclist
)

CAMVID_INFO = DatasetInfo(
    name="camvid",
    class_names=CAMVID_CLASSES,
    palette=CAMVID_PALETTE,
    void_index=11,
)

#: The split folders of the SegNet layout.
CAMVID_SPLITS = ("train", "val", "test")
_MASK_EXT = ".png"


class CamVid(SegmentationDataset):
    """CamVid (SegNet layout) at ``root``.

    ``test_split``: the folder the ``"test"`` split is read from, ``"test"``
    (default) or ``"val"`` for copies without ``test/`` (val doubles as test).
    """

    def __init__(self, root, test_split: str = "test", info: DatasetInfo = CAMVID_INFO):
        self.root = Path(root)
        self.info = info
        if test_split not in CAMVID_SPLITS:
            raise ValueError(f"test_split must be one of {CAMVID_SPLITS}, got {test_split!r}")
        self.test_split = test_split
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: CamVid folder not found (expected train/, trainannot/, ...)")
        self._ids: dict[str, list[str]] = {}

    def _folder(self, split: str) -> str:
        return self.test_split if split == "test" else split

    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in CAMVID_SPLITS if (self.root / self._folder(s)).is_dir())

    def split_aliases(self) -> dict[str, str]:
        return {"test": self.test_split} if self.test_split != "test" else {}

    def ids(self, split: str) -> list[str]:
        if split not in self._ids:
            if split not in CAMVID_SPLITS:
                raise DatasetError(f"{self.root}: CamVid has no split {split!r} (it has {CAMVID_SPLITS})")
            folder = self._folder(split)
            if not (self.root / folder).is_dir():
                hint = " (this copy has no test/: pass test_split='val')" if split == "test" else ""
                raise DatasetError(f"{self.root / folder}: missing CamVid {split} folder{hint}")
            self._ids[split] = [
                f"{folder}/{p.name}" for p in list_files(self.root / folder, (".png",))
            ]
        return list(self._ids[split])

    def paths(self, sample_id: str) -> tuple[Path, Path]:
        folder, _, name = sample_id.partition("/")
        if not name or "/" in name or folder not in CAMVID_SPLITS:
            raise DatasetError(f"{sample_id}: not a CamVid sample id (expected '<split>/<file>.png')")
        return self.root / sample_id, self.root / f"{folder}annot" / (Path(name).stem + _MASK_EXT)

    def index_problems(self, splits: Sequence[str]) -> list[str]:
        problems = []
        for folder in sorted({self._folder(s) for s in splits}):
            annot = self.root / f"{folder}annot"
            if not (self.root / folder).is_dir():
                continue  # reported as a missing split by validate
            if not annot.is_dir():
                problems.append(f"{annot}: missing mask folder for {self.root / folder}")
                continue
            images = {p.stem for p in list_files(self.root / folder, (".png",))}
            for m in list_files(annot, (".png",)):
                if m.stem not in images:
                    problems.append(f"{m}: mask without image {self.root / folder / m.name}")
        return problems
