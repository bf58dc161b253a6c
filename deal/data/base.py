"""The dataset interface every kind implements, and the file decoding they share.

A dataset maps stable string ids (paths relative to its root, e.g.
``"train/0001TP_006690.png"``) to an ``(image, mask)`` pair:

* image: ``uint8`` tensor ``3 x H x W`` (RGB);
* mask: ``uint8`` tensor ``H x W`` of train ids, ``info.void_index`` where the
  pixel is void (ignored by losses and metrics); every other value lies in
  ``[0, info.num_classes)``.

This module does not import torch at import time (listing ids, class names or
palettes must stay cheap for stages that need no torch); torch and torchvision
are imported by the functions that decode.
"""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Image file extensions recognised by the folder kind (masks are always PNG).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class DatasetError(Exception):
    """Bad input: one line per problem, each naming the file and what is wrong."""

    def __init__(self, lines: str | Iterable[str]):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


@dataclass(frozen=True)
class DatasetInfo:
    """What a pipeline needs to know about the classes of a dataset.

    ``void_index`` is the mask value of void pixels; it lies outside
    ``[0, num_classes)`` and ``mask == void_index`` means void for every kind.
    """

    name: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    void_index: int
    void_color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self):
        # Accept lists (from YAML/JSON) but store tuples so the info stays hashable.
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "palette", tuple(tuple(int(v) for v in c) for c in self.palette))
        object.__setattr__(self, "void_color", tuple(int(v) for v in self.void_color))
        n = len(self.class_names)
        if n == 0:
            raise ValueError(f"dataset {self.name!r}: no classes")
        if len(set(self.class_names)) != n:
            raise ValueError(f"dataset {self.name!r}: duplicate class names {self.class_names}")
        if len(self.palette) != n:
            raise ValueError(
                f"dataset {self.name!r}: palette has {len(self.palette)} colours for {n} classes"
            )
        for c in self.palette + (self.void_color,):
            if len(c) != 3 or not all(0 <= v <= 255 for v in c):
                raise ValueError(f"dataset {self.name!r}: colour {c} is not an RGB triple in 0..255")
        if not 0 <= self.void_index <= 255 or self.void_index < n:
            raise ValueError(
                f"dataset {self.name!r}: void_index {self.void_index} must be in [{n}, 255] "
                "(outside the class range, and storable in a uint8 mask)"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def colorize(self, mask) -> np.ndarray:
        """``H x W`` train-id mask (array or tensor) -> ``H x W x 3`` uint8 RGB."""
        m = np.asarray(mask)
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[:] = self.void_color
        lut[: self.num_classes] = self.palette
        return lut[m.astype(np.int64).clip(0, 255)]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "palette": [list(c) for c in self.palette],
            "void_index": self.void_index,
            "void_color": list(self.void_color),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetInfo":
        return cls(
            name=d["name"],
            class_names=tuple(d["class_names"]),
            palette=tuple(tuple(c) for c in d["palette"]),
            void_index=int(d["void_index"]),
            void_color=tuple(d.get("void_color", (0, 0, 0))),
        )


# --------------------------------------------------------------------------- decoding


def read_image_file(path: Path, name: str | None = None) -> "torch.Tensor":
    """Decode an image file to a ``3 x H x W`` uint8 RGB tensor.

    torchvision.io (libpng/libjpeg) first: it decodes CamVid frames a little
    faster than PIL (`bench/data.py` prints both); PIL for the formats
    torchvision does not read. Raises DatasetError naming the file.
    """
    import torch
    from torchvision.io import ImageReadMode, decode_image, read_file

    name = name or str(path)
    if not Path(path).is_file():
        raise DatasetError(f"{name}: missing image file")
    try:
        if Path(path).suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".gif"):
            with _quiet():
                img = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
        else:
            from PIL import Image

            with Image.open(path) as im:
                arr = np.array(im.convert("RGB"))
            img = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    except DatasetError:
        raise
    except Exception as e:  # libpng/libjpeg/PIL errors all mean the same here
        raise DatasetError(f"{name}: unreadable or truncated image ({_short(e)})") from None
    if img.dtype != torch.uint8:  # 16-bit PNG photographs
        img = (img.to(torch.float32) / 257.0).round().to(torch.uint8)
    return img


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_layout(data: bytes) -> tuple[int, int, bool] | None:
    """``(bit depth, colour type, has a tRNS chunk)`` from a PNG's header chunks, or None
    when ``data`` is no PNG (the decoder then says why)."""
    if len(data) < 33 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    depth, colour_type = data[24], data[25]
    position, transparency = 8, False
    while position + 8 <= len(data):  # tRNS, if any, comes before the first IDAT
        kind = data[position + 4:position + 8]
        if kind in (b"IDAT", b"IEND"):
            break
        transparency |= kind == b"tRNS"
        position += 12 + int.from_bytes(data[position:position + 4], "big")
    return depth, colour_type, transparency


def read_label_file(path: Path, name: str | None = None, color: bool = False) -> np.ndarray:
    """Decode a label PNG to its raw values.

    ``color=False``: single-channel (grey of 1, 2, 4, 8 or 16 bits, or a palette
    PNG, whose *indices* are the labels) -> ``H x W`` integer array of the stored
    samples: a 1-bit mask holds 0 and 1, not the 0 and 255 a viewer shows.
    ``color=True``: ``H x W x 3`` uint8 RGB (colour-coded masks, 8 bits a channel);
    an alpha channel must be opaque everywhere (a colour is a class only where it
    is seen). Raises DatasetError naming the file.
    """
    name = name or str(path)
    if not Path(path).is_file():
        raise DatasetError(f"{name}: missing mask file")
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(f"{name}: unreadable mask ({_short(e)})") from None
    layout = png_layout(data)
    if layout is None:
        raise DatasetError(f"{name}: unreadable or truncated mask (no PNG header); save masks as PNG")
    depth, colour_type, transparency = layout
    if color:
        if depth == 16:
            raise DatasetError(f"{name}: a 16-bit colour mask; save it with 8 bits a channel, painted in the "
                               "palette's colours")
        if colour_type in (4, 6) or transparency:
            rgba = _pil_decode(path, name, "RGBA")
            seen_through = int((rgba[..., 3] < 255).sum())
            if seen_through:
                raise DatasetError(
                    f"{name}: transparent pixels ({seen_through} with alpha < 255), but a colour mask is read by "
                    "its colours alone; paint them with void_color or a class colour and save without transparency")
            return np.ascontiguousarray(rgba[..., :3])
        if colour_type == 2:  # 8-bit RGB: libpng (torchvision), the fast path
            return _tv_decode(data, name, color=True).permute(1, 2, 0).numpy()
        return _pil_decode(path, name, "RGB")  # grey or palette: their colours
    if colour_type in (0, 3) and depth < 8:
        # torchvision scales sub-byte grey to 0..255 and unpacks sub-byte palette indices wrongly
        return _pil_samples(path, name, depth)
    t = _tv_decode(data, name, color=False)
    if t.shape[0] != 1:
        raise DatasetError(
            f"{name}: mask has {t.shape[0]} channels; expected a single-channel label PNG "
            "(grey or palette) holding class indices"
        )
    return t[0].numpy()


def _tv_decode(data: bytes, name: str, color: bool) -> "torch.Tensor":
    import torch
    from torchvision.io import ImageReadMode, decode_png

    try:
        with _quiet():
            return decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                              ImageReadMode.RGB if color else ImageReadMode.UNCHANGED)
    except Exception as e:
        raise DatasetError(f"{name}: unreadable or truncated mask ({_short(e)})") from None


def _pil_decode(path: Path, name: str, mode: str) -> np.ndarray:
    """The mask as PIL converts it to ``mode`` (its colours)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert(mode))
    except Exception as e:  # PIL raises several kinds for a truncated or corrupt file
        raise DatasetError(f"{name}: unreadable or truncated mask ({_short(e)})") from None


def _pil_samples(path: Path, name: str, depth: int) -> np.ndarray:
    """The stored samples of a 1-, 2- or 4-bit grey or palette PNG: PIL reads palette indices
    and 1-bit grey as they are, and 2- and 4-bit grey scaled to 0..255 (x 85, x 17), undone here."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            mode = im.mode
            values = np.array(im)
    except Exception as e:
        raise DatasetError(f"{name}: unreadable or truncated mask ({_short(e)})") from None
    values = values.astype(np.uint8)
    if mode == "L":
        values //= 255 // ((1 << depth) - 1)
    return values


@contextmanager
def _quiet():
    """torchvision 0.29 flags its image codecs as deprecated (in favour of
    torchcodec) on every call; they are still the faster decoders here (CamVid
    pairs: 223 vs 189 per s with PIL, bench/data.py), so the notice is
    silenced around our own calls only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision")
        yield


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return msg[:120]


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` from the file header, without decoding pixels."""
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
    return h, w


def resize_pair(image, mask, size: tuple[int, int]):
    """Resize a ``3xHxW`` uint8 image (bilinear, antialiased) and its ``HxW``
    mask (nearest-exact, which picks the source pixel under the bilinear
    sample's centre, so image and mask stay aligned)."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    size = [int(size[0]), int(size[1])]
    if tuple(image.shape[-2:]) != tuple(size):
        image = F.resize_image(image, size, InterpolationMode.BILINEAR, antialias=True)
    return image, resize_mask(mask, size)


def resize_mask(mask, size: tuple[int, int]):
    """An ``HxW`` mask at ``size`` as ``resize_pair`` resizes it (nearest-exact)."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    size = [int(size[0]), int(size[1])]
    if tuple(mask.shape[-2:]) != tuple(size):
        mask = F.resize_image(mask[None], size, InterpolationMode.NEAREST_EXACT)[0]
    return mask


def index_lut(info: DatasetInfo) -> np.ndarray:
    """``int16[65536]``: a stored value -> its train id where the values are the train ids
    (the classes and void), -1 for any other value."""
    lut = np.full(65536, -1, dtype=np.int16)
    lut[: info.num_classes] = np.arange(info.num_classes)
    lut[info.void_index] = info.void_index
    return lut


def bad_values_text(bad: np.ndarray, info: DatasetInfo) -> str:
    shown = ", ".join(str(int(v)) for v in bad[:8]) + (" ..." if bad.size > 8 else "")
    return f"mask values {shown} are neither a class (0..{info.num_classes - 1}) nor void ({info.void_index})"


def index_mask(raw: np.ndarray, lut: np.ndarray, info: DatasetInfo, name: str, describe=None) -> np.ndarray:
    """Raw mask values -> ``H x W`` uint8 train ids through ``lut``; DatasetError names the
    file and the values that are neither a class nor void (in `describe(bad)`'s words if given)."""
    present = np.flatnonzero(np.bincount(raw.ravel(), minlength=1))
    bad = present[lut[present] < 0]
    if bad.size:
        raise DatasetError(f"{name}: {describe(bad) if describe else bad_values_text(bad, info)}")
    if np.array_equal(lut[present], present):  # stored values are already train ids
        return raw.astype(np.uint8, copy=False)
    return lut[raw].astype(np.uint8)


def _normalize_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))


# --------------------------------------------------------------------------- interface


class SegmentationDataset(ABC):
    """A segmentation dataset on disk.

    Subclasses set ``info`` and ``root`` and implement ``splits``, ``ids`` and
    ``paths``; they may override ``label_lut`` (raw mask value -> train id) and
    ``index_problems`` (problems found while listing files: orphans, missing
    listed files, duplicates) which ``validate`` reports.
    """

    info: DatasetInfo
    root: Path
    #: ``(H, W)`` every sample is resized to on read, or None for native size.
    size: tuple[int, int] | None = None

    @abstractmethod
    def splits(self) -> tuple[str, ...]:
        """The split names this dataset has."""

    @abstractmethod
    def ids(self, split: str) -> list[str]:
        """Sorted sample ids of a split (paths of the images relative to ``root``)."""

    @abstractmethod
    def paths(self, sample_id: str) -> tuple[Path, Path]:
        """``(image path, mask path)`` of a sample."""

    def split_aliases(self) -> dict[str, str]:
        """Splits that are another split under a second name (e.g. CamVid's
        ``test`` read from ``val``); ``validate`` does not count them as
        duplicates."""
        return {}

    def index_problems(self, splits: Sequence[str]) -> list[str]:
        """Problems found while indexing the files of ``splits`` (no decoding)."""
        return []

    def may_lack_mask(self, sample_id: str) -> bool:
        """True for a sample whose mask a person has yet to draw (a folder dataset's pool
        with a human oracle): it reads as all void, and validation does not count it."""
        return False

    def missing_mask_note(self, split: str) -> str:
        """What a "missing mask" problem line adds: whether a mask may be missing there."""
        return ""

    def _check_split(self, split: str) -> None:
        if split not in self.splits():
            raise DatasetError(
                f"{self.root}: {self.info.name} has no split {split!r} "
                f"(it has: {', '.join(self.splits()) or 'none'})"
            )

    # -- masks ---------------------------------------------------------------------

    def label_lut(self) -> np.ndarray:
        """``int16[65536]``: raw mask value -> train id; -1 marks a value that is
        neither a class nor void. Default: the stored values are the train ids."""
        return index_lut(self.info)

    def _lut(self) -> np.ndarray:
        lut = getattr(self, "_cached_lut", None)
        if lut is None:
            lut = self.label_lut()
            self._cached_lut = lut
        return lut

    def decode_mask(self, path: Path, name: str | None = None) -> np.ndarray:
        """Read a mask file -> ``H x W`` uint8 train ids. Raises DatasetError
        naming the file (and the bad values) when a value is neither a class
        nor void."""
        name = name or str(path)
        return index_mask(read_label_file(path, name), self._lut(), self.info, name, self._bad_values_text)

    def _bad_values_text(self, bad: np.ndarray) -> str:
        return bad_values_text(bad, self.info)

    # -- reading -------------------------------------------------------------------

    def read(self, sample_id: str) -> tuple["torch.Tensor", "torch.Tensor"]:
        """``(image uint8 3xHxW, mask uint8 HxW)``; resized to ``self.size`` when set."""
        import torch

        img_path, mask_path = self.paths(sample_id)
        img = read_image_file(img_path)
        if not mask_path.is_file() and self.may_lack_mask(sample_id):  # not labelled yet: void everywhere
            mask = torch.full(tuple(img.shape[-2:]), self.info.void_index, dtype=torch.uint8)
        else:
            mask = torch.from_numpy(np.ascontiguousarray(self.decode_mask(mask_path)))
        if tuple(img.shape[-2:]) != tuple(mask.shape):
            raise DatasetError(
                f"{img_path}: image is {img.shape[2]}x{img.shape[1]} but its mask "
                f"{mask_path} is {mask.shape[1]}x{mask.shape[0]} (WxH)"
            )
        if self.size is not None:
            img, mask = resize_pair(img, mask, self.size)
        return img, mask

    def read_many(
        self, ids: Sequence[str], size: tuple[int, int] | int | None = None, progress: bool = False
    ) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Decode ``ids`` once into memory: ``(N x 3 x H x W uint8, N x H x W uint8)``.

        ``size=(H, W)`` resizes every sample (bilinear image, nearest mask);
        without it all samples must share one size.
        """
        import torch

        size = _normalize_size(size)
        ids = list(ids)
        images = masks = None
        it = ids
        if progress:
            from tqdm import tqdm

            it = tqdm(ids, desc=f"decode {self.info.name}", unit="img", disable=None)
        for i, sid in enumerate(it):
            img, mask = self.read(sid)
            if size is not None:
                img, mask = resize_pair(img, mask, size)
            if images is None:
                h, w = img.shape[-2:]
                images = torch.empty((len(ids), 3, h, w), dtype=torch.uint8)
                masks = torch.empty((len(ids), h, w), dtype=torch.uint8)
            elif tuple(img.shape[-2:]) != tuple(images.shape[-2:]):
                raise DatasetError(
                    f"{self.root / sid}: size {img.shape[-1]}x{img.shape[-2]} differs from "
                    f"{images.shape[-1]}x{images.shape[-2]} of {ids[0]}; pass size=(H, W) to read_many"
                )
            images[i] = img
            masks[i] = mask
        if images is None:
            h, w = size or (0, 0)
            images = torch.empty((0, 3, h, w), dtype=torch.uint8)
            masks = torch.empty((0, h, w), dtype=torch.uint8)
        return images, masks

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"


def list_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Files directly in ``folder`` with one of ``extensions`` (case-insensitive), sorted."""
    if not folder.is_dir():
        return []
    exts = tuple(e.lower() for e in extensions)
    with os.scandir(folder) as it:
        out = [Path(e.path) for e in it if e.is_file() and e.name.lower().endswith(exts)]
    return sorted(out)
