"""Datasets (synthetic street scenes, CamVid, Cityscapes, your own folders),
joint image+mask transforms and active-learning pools.

Importing ``deal.data`` is light: names are loaded on first use, and the
modules that need no torch (pools, base, camvid, cityscapes, folder,
synthetic, validate) do not import it.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DatasetInfo": "base",
    "DatasetError": "base",
    "SegmentationDataset": "base",
    "CamVid": "camvid",
    "CAMVID_INFO": "camvid",
    "Cityscapes": "cityscapes",
    "CITYSCAPES_INFO": "cityscapes",
    "FolderDataset": "folder",
    "SYNTHETIC_INFO": "synthetic",
    "generate_scene": "synthetic",
    "write_synthetic": "synthetic",
    "Pool": "pools",
    "initial_pool": "pools",
    "subsample": "pools",
    "validate": "validate",
    "ensure_valid": "validate",
    "train_transforms": "transforms",
    "eval_transforms": "transforms",
    "normalize": "transforms",
    "InMemorySegmentation": "memory",
    "open_dataset": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        mod = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
