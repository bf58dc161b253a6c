"""The prepared data a stage was given (--prepared): the prepare stage's arrays, ids and dataset info.

A stage holds one `Prepared` and passes it to what reads the data; nothing reads it behind a global.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from stages._shared.errors import fail
from stages._shared.files import read_json, read_npy


def answered_ids(labeled: list[str], unmasked: list[str]) -> list[str]:
    """The labeled ids whose masks the oracle's answers hold (those the dataset has none of), in the
    answers' row order (sorted)."""
    missing = set(unmasked)
    return sorted(sid for sid in labeled if sid in missing)


class Prepared:
    """The prepare stage's output folder: `{split}_images.npy`, `{split}_masks.npy`, ids.json,
    info.json, unmasked.json."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def __fspath__(self) -> str:
        return str(self.folder)

    def __str__(self) -> str:
        return str(self.folder)

    @cached_property
    def info(self) -> dict:
        """info.json: num_classes, void_index, size, class names, ..."""
        return read_json(self.folder / "info.json")

    @property
    def source(self) -> dict:
        """source.json: where the prepare stage read the dataset (path, kind)."""
        return read_json(self.folder / "source.json")

    @property
    def num_classes(self) -> int:
        return self.info["num_classes"]

    @cached_property
    def _ids(self) -> dict:
        return read_json(self.folder / "ids.json")

    def ids(self, split: str) -> list[str]:
        """The ids of `split`, in the arrays' row order."""
        return self._ids[split]

    def split_sizes(self) -> dict[str, int] | None:
        """{train, val, test: number of images}, or None before the prepare stage wrote its ids."""
        if not (self.folder / "ids.json").is_file():
            return None
        return {split: len(self._ids.get(split, [])) for split in ("train", "val", "test")}

    def images(self, split: str) -> np.ndarray:
        """The images of `split` (N x 3 x H x W uint8), memory-mapped."""
        return read_npy(self.folder / f"{split}_images.npy", mmap=True)

    def load(self, split: str, ids: list[str] | None = None):
        """uint8 tensors (images N x 3 x H x W, masks N x H x W) of `split`, in `ids` order."""
        import torch

        images = self.images(split)
        masks = read_npy(self.folder / f"{split}_masks.npy", mmap=True)
        if ids is not None:
            position = {sid: i for i, sid in enumerate(self.ids(split))}
            missing = [sid for sid in ids if sid not in position]
            if missing:
                fail(f"{self.folder / 'ids.json'}: {missing[0]} is not in the {split} split; rerun `dvc repro prepare`")
            order = np.array([position[sid] for sid in ids], dtype=np.int64)
            images, masks = images[order], masks[order]
        # np.array copies out of the read-only memory map
        return torch.from_numpy(np.array(images)), torch.from_numpy(np.array(masks))

    def unmasked_ids(self) -> list[str]:
        """The train images without a mask in the dataset (oracle: human: the pool a person labels;
        empty otherwise), sorted."""
        return read_json(self.folder / "unmasked.json")["train"]

    def load_labeled(self, pool, answers: str | Path):
        """The labeled pool as uint8 tensors (images, masks): the dataset's masks, and for the images
        a person labelled (oracle: human) the masks the label stage imported into `answers` (N x H x W,
        rows in `answered_ids` order; an empty array when the dataset's masks answered)."""
        import torch

        images, masks = self.load("train", pool.labeled)
        rows = answered_ids(pool.labeled, self.unmasked_ids())
        found = read_npy(answers)
        if found.ndim != 3 or len(found) != len(rows) or (rows and tuple(found.shape[1:]) != tuple(masks.shape[1:])):
            fail(f"{answers}: holds {tuple(found.shape)} masks but the pool has {len(rows)} labelled by a person "
                 f"at {tuple(masks.shape[1:])}; rerun `dvc repro` so the label stage writes them again")
        if rows:
            position = {sid: i for i, sid in enumerate(pool.labeled)}
            masks[[position[sid] for sid in rows]] = torch.from_numpy(found)
        return images, masks

    def val_is_test(self) -> bool:
        """True when the validation and test splits share images (CamVid's test_split: val): a
        best-validation checkpoint would then be picked on the test set."""
        return bool(set(self.ids("val")) & set(self.ids("test")))

    def checkpoint_rule(self):
        """The validation split a training keeps its best checkpoint on, and the rule in words.
        Validation on the test images would pick the checkpoint on the test set: then, as with
        no validation split, the last epoch's weights are kept. (InMemorySegmentation or None, str)"""
        from deal.data.memory import InMemorySegmentation

        if self.ids("val") and not self.val_is_test():
            return InMemorySegmentation(*self.load("val")), "best validation mIoU"
        return None, ("last epoch (the test split doubles as validation)" if self.ids("val")
                      else "last epoch (no validation split)")
