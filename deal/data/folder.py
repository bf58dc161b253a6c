"""Your own data: ``images/`` and ``masks/`` with matching stems, and a YAML.

```
root/
  dataset.yaml
  images/  a.jpg  b.png  ...        (or images/<split>/..., see splits below)
  masks/   a.png  b.png  ...        PNG, same stem (and subfolder) as the image
```

``dataset.yaml``::

    name: my-streets                 # optional (default: the folder name)
    class_names: [road, car, sky]
    palette: [[128, 64, 128], [0, 0, 142], [70, 130, 180]]   # optional
    void_index: 255                  # mask value of void pixels (default 255)
    mask_format: index               # index (default) | color
    void_color: [0, 0, 0]            # colour of void in `color` masks and figures
    splits:                          # optional
      train: train.txt               # a text file (relative to root), one stem per line
      val: [img_010, img_011]        # an explicit list of stems
      test: 0.2                      # a fraction of the stems no list names, drawn by split_seed
      # pool: "*"                    # every stem not in another split (at most one "*")
    split_seed: 0

``mask_format: index``: masks are single-channel PNGs (1- to 16-bit grey, or
palette PNGs whose indices are read) holding class indices ``0..C-1`` and
``void_index``; the stored samples are read, so a 1-bit mask holds classes 0
and 1. ``mask_format: color``: masks are RGB PNGs (or grey, palette, or
opaque RGBA, read by the colours they show; 8 bits a channel) painted with the
palette colours; ``void_color`` is void, any other colour, a transparent
pixel or a 16-bit colour is an error.

Without ``splits``: if ``images/`` holds subfolders, each subfolder is a split
(``images/train/x.png`` <-> ``masks/train/x.png``); otherwise the images are
split as ``DEFAULT_SPLITS`` says: 10 % val, 20 % test, the rest train, drawn
by ``split_seed``.

``unlabeled_pool=True`` (a person labels the pool, ``oracle: human``): train
images may lack masks (they read as all void until a person draws them; val
and test images still need theirs), val and test may be absent, and a flat
``images/`` folder without ``splits`` is all train: a random 10/20 % of
unlabelled images would be val and test images nobody can score. A stem is the image path relative to ``images/`` without
its extension. Sample ids are image paths relative to the root
(``"images/train/x.png"``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import (
    IMAGE_EXTENSIONS,
    DatasetError,
    DatasetInfo,
    SegmentationDataset,
    read_label_file,
)

YAML_NAME = "dataset.yaml"
#: the splits of a flat ``images/`` folder whose YAML lists none (the pipeline needs all three)
DEFAULT_SPLITS = {"train": "*", "val": 0.1, "test": 0.2}
MASK_EXT = ".png"


def default_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """``n`` distinct colours (the PASCAL VOC bit-interleaving scheme)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i + 1
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return tuple(out)


def stem_of(sample_id: str) -> str:
    """``images/train/x.jpg`` -> ``train/x``: where its mask lies below ``masks/`` (or a labels folder)."""
    if not sample_id.startswith("images/"):
        raise DatasetError(f"{sample_id}: not a folder-dataset sample id (expected images/<stem>.<ext>)")
    return Path(sample_id[len("images/"):]).with_suffix("").as_posix()


def _scan(folder: Path) -> dict[str, list[Path]]:
    """stem (posix path relative to ``folder``, no extension) -> files with that stem."""
    out: dict[str, list[Path]] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            stem = p.relative_to(folder).with_suffix("").as_posix()
            out.setdefault(stem, []).append(p)
    return out


class FolderDataset(SegmentationDataset):
    def __init__(self, root, config: dict | None = None, unlabeled_pool: bool = False):
        self.root = Path(root)
        self.unlabeled_pool = unlabeled_pool
        yaml_path = self.root / YAML_NAME
        if config is None:
            if not yaml_path.is_file():
                raise DatasetError(
                    f"{yaml_path}: missing; a folder dataset needs {YAML_NAME} with at least class_names"
                )
            import yaml

            try:
                config = yaml.safe_load(yaml_path.read_text()) or {}
            except yaml.YAMLError as e:
                raise DatasetError(f"{yaml_path}: not valid YAML ({str(e).splitlines()[0]})") from None
        self.config = dict(config)
        self.info = self._parse_info(self.config, yaml_path)
        self.mask_format = str(self.config.get("mask_format", "index"))
        if self.mask_format not in ("index", "color"):
            raise DatasetError(f"{yaml_path}: mask_format must be 'index' or 'color', got {self.mask_format!r}")
        self.split_seed = int(self.config.get("split_seed", 0))
        self._problems: list[tuple[str | None, str]] = []  # (split, or None for all; line)
        self._splits = self._build_splits(yaml_path)
        self._train_ids = frozenset(self._splits.get("train", ()))

    # -- config --------------------------------------------------------------------

    def _parse_info(self, cfg: dict, yaml_path: Path) -> DatasetInfo:
        names = cfg.get("class_names")
        if not names or not isinstance(names, (list, tuple)):
            raise DatasetError(f"{yaml_path}: class_names must be a non-empty list")
        palette = cfg.get("palette") or default_palette(len(names))
        try:
            return DatasetInfo(
                name=str(cfg.get("name", self.root.name)),
                class_names=tuple(names),
                palette=tuple(tuple(c) for c in palette),
                void_index=int(cfg.get("void_index", 255)),
                void_color=tuple(cfg.get("void_color", (0, 0, 0))),
            )
        except (ValueError, TypeError) as e:
            raise DatasetError(f"{yaml_path}: {e}") from None

    def _build_splits(self, yaml_path: Path) -> dict[str, list[str]]:
        images = _scan(self.root / "images")
        self._images = images
        spec = self.config.get("splits")
        if spec is None:
            subdirs = sorted(p.name for p in (self.root / "images").glob("*") if p.is_dir())
            if subdirs:
                spec = {
                    d: sorted(s for s in images if s.startswith(d + "/")) for d in subdirs
                }
                for stem in sorted(s for s in images if "/" not in s):
                    self._problems.append((None, (
                        f"{images[stem][0]}: outside the split subfolders ({', '.join(subdirs)}); "
                        f"move it into one, or list the splits in {YAML_NAME}"
                    )))
            else:
                spec = {"train": "*"} if self.unlabeled_pool else dict(DEFAULT_SPLITS)
        if not isinstance(spec, dict) or not spec:
            raise DatasetError(f"{yaml_path}: splits must map split names to stems, a file or a fraction")

        stems: dict[str, list[str]] = {}
        fractions: list[tuple[str, float]] = []
        rest: str | None = None
        for name, value in spec.items():
            name = str(name)
            if isinstance(value, (list, tuple)):
                stems[name] = [self._strip(str(v)) for v in value]
            elif isinstance(value, str) and value == "*":
                if rest is not None:
                    raise DatasetError(f"{yaml_path}: splits {rest!r} and {name!r} both take '*'; one may")
                rest = name
            elif isinstance(value, str):
                f = self.root / value
                # a list outside the root would be read (and echoed in errors) yet not hashed as the data
                if not f.resolve().is_relative_to(self.root.resolve()):
                    raise DatasetError(f"{yaml_path}: split {name!r}: {value!r} is outside the dataset folder "
                                       f"{self.root}; keep split lists inside it")
                if not f.is_file():
                    raise DatasetError(f"{f}: missing split list for split {name!r} (named in {YAML_NAME})")
                lines = [ln.strip() for ln in f.read_text().splitlines()]
                stems[name] = [self._strip(ln) for ln in lines if ln and not ln.startswith("#")]
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1:
                fractions.append((name, float(value)))
            else:
                raise DatasetError(
                    f"{yaml_path}: split {name!r}: expected a list of stems, a file name, "
                    f"a fraction in (0, 1] or '*', got {value!r}"
                )
        if fractions or rest is not None:
            listed = {s for v in stems.values() for s in v}
            remaining = sorted(s for s in images if s not in listed)
            order = np.random.default_rng(self.split_seed).permutation(len(remaining))
            remaining = [remaining[i] for i in order]
            total = sum(f for _, f in fractions)
            if total > 1 + 1e-9:
                raise DatasetError(f"{yaml_path}: split fractions sum to {total:g} > 1")
            start, cum = 0, 0.0
            for name, f in fractions:
                cum += f
                end = min(len(remaining), int(math.floor(cum * len(remaining) + 0.5)))
                stems[name] = remaining[start:end]
                start = end
            if rest is not None:
                stems[rest] = remaining[start:]

        out: dict[str, list[str]] = {}
        for name in spec:  # keep the YAML order
            name = str(name)
            ids = []
            counts: dict[str, int] = {}
            for stem in stems.get(name, []):
                counts[stem] = counts.get(stem, 0) + 1
            for stem, n in counts.items():
                files = images.get(stem, [])
                if not files:
                    self._problems.append(
                        (name, f"{self.root / 'images' / stem}.*: missing image (listed in split {name!r})")
                    )
                    continue
                sid = f"images/{files[0].relative_to(self.root / 'images').as_posix()}"
                if len(files) > 1:
                    others = ", ".join(str(p) for p in files[1:])
                    self._problems.append(
                        (name, f"{files[0]}: duplicate id: stem {stem!r} also at {others} (one mask, two images)")
                    )
                if n > 1:
                    self._problems.append((name, f"{files[0]}: duplicate id: listed {n} times in split {name!r}"))
                ids.append(sid)
            out[name] = sorted(ids)
        return out

    @staticmethod
    def _strip(stem: str) -> str:
        stem = stem.strip().replace("\\", "/")
        if stem.startswith("images/"):
            stem = stem[len("images/"):]
        p = Path(stem)
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            stem = p.with_suffix("").as_posix()
        return stem

    # -- interface -----------------------------------------------------------------

    def splits(self) -> tuple[str, ...]:
        return tuple(self._splits)

    def ids(self, split: str) -> list[str]:
        if split not in self._splits:
            raise DatasetError(
                f"{self.root / YAML_NAME}: no split {split!r} (it has: {', '.join(self._splits) or 'none'}); "
                f"name it under splits, e.g. splits: {{train: \"*\", val: 0.1, test: 0.2}}"
            )
        return list(self._splits[split])

    def may_lack_mask(self, sample_id: str) -> bool:
        return self.unlabeled_pool and sample_id in self._train_ids

    def missing_mask_note(self, split: str) -> str:
        if self.unlabeled_pool:
            return f" (a {split} image needs its mask; only train images, the pool a person labels, may lack one)"
        return " (every image needs a mask when the dataset's masks answer the oracle; with oracle: human, train images may lack one)"

    def unmasked(self, split: str = "train") -> list[str]:
        """The ids of ``split`` whose mask file is absent (with ``unlabeled_pool``: the pool a person labels)."""
        return [sid for sid in self.ids(split) if not self.paths(sid)[1].is_file()]

    def paths(self, sample_id: str) -> tuple[Path, Path]:
        return self.root / sample_id, self.root / "masks" / (stem_of(sample_id) + MASK_EXT)

    def index_problems(self, splits: Sequence[str]) -> list[str]:
        problems = [line for split, line in self._problems if split is None or split in splits]
        masks_dir = self.root / "masks"
        if not masks_dir.is_dir():
            problems.append(f"{masks_dir}: missing mask folder")
            return problems
        for m in sorted(masks_dir.rglob("*" + MASK_EXT)):
            stem = m.relative_to(masks_dir).with_suffix("").as_posix()
            if stem not in self._images:
                problems.append(f"{m}: mask without image {self.root / 'images' / stem}.*")
        return problems

    # -- masks ---------------------------------------------------------------------

    def decode_mask(self, path: Path, name: str | None = None) -> np.ndarray:
        if self.mask_format == "index":
            return super().decode_mask(path, name)
        name = name or str(path)
        return colour_mask(read_label_file(path, name, color=True), self.info, name)


def colour_mask(rgb: np.ndarray, info: DatasetInfo, name: str) -> np.ndarray:
    """An ``H x W x 3`` mask painted in ``info.palette`` (``void_color`` for void) -> ``H x W``
    uint8 train ids; DatasetError names the file and the colours that are neither."""
    rgb = rgb.astype(np.int32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours = list(info.palette) + [info.void_color]
    values = list(range(info.num_classes)) + [info.void_index]
    keys = np.array([(r << 16) | (g << 8) | b for r, g, b in colours], dtype=np.int32)
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], np.array(values, dtype=np.uint8)[order]
    pos = np.searchsorted(keys, code).clip(0, len(keys) - 1)
    ok = keys[pos] == code
    if not ok.all():
        bad = np.unique(code[~ok])
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in bad[:4])
        more = " ..." if bad.size > 4 else ""
        raise DatasetError(f"{name}: mask colours {shown}{more} are neither a palette colour nor void_color")
    return vals[pos]
