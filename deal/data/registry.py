"""One entry point from params to a dataset: ``open_dataset(kind, root, **options)``."""

from __future__ import annotations

from .base import SegmentationDataset

KINDS = ("synthetic", "camvid", "cityscapes", "folder")


def open_dataset(kind: str, root, **options) -> SegmentationDataset:
    """``kind``: ``synthetic`` (a folder written by ``write_synthetic``),
    ``camvid`` (options: ``test_split``), ``cityscapes`` (``val_holdout``,
    ``seed``, ``size``) or ``folder``. Unknown options raise TypeError."""
    if kind == "synthetic":
        from .synthetic import SyntheticStreets

        return SyntheticStreets(root, **options)
    if kind == "camvid":
        from .camvid import CamVid

        return CamVid(root, **options)
    if kind == "cityscapes":
        from .cityscapes import Cityscapes

        return Cityscapes(root, **options)
    if kind == "folder":
        from .folder import FolderDataset

        return FolderDataset(root, **options)
    raise ValueError(f"unknown dataset kind {kind!r}; one of {', '.join(KINDS)}")
