"""Validate a dataset before any training or output.

``validate(dataset, splits)`` lists every problem, one line each naming the
file and what is wrong: a missing image or mask (a pool image may lack its
mask where the dataset says so: a person labels it later), an unreadable or truncated
file, an image and mask of different sizes, mask values outside the classes
and void, an empty split, a duplicate id. Stages call ``ensure_valid`` first
and stop (non-zero, nothing written) when it raises.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from .base import DatasetError, SegmentationDataset, image_size, read_image_file

__all__ = ["DatasetError", "validate", "ensure_valid"]


def _verify_image(path) -> None:
    """Cheap structural check without decoding pixels: PNG chunk CRCs through
    to IEND (PIL's verify), and for JPEG the end-of-image marker, which a
    truncated file lacks (PIL's verify does not look for it)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            fmt = im.format
            im.verify()
        if fmt == "JPEG":
            with open(path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 64))
                if b"\xff\xd9" not in f.read():
                    raise ValueError("no JPEG end-of-image marker")
    except Exception as e:
        msg = str(e).strip() or type(e).__name__
        raise DatasetError(f"{path}: unreadable or truncated image ({msg[:120]})") from None


def validate(
    dataset: SegmentationDataset,
    splits: Sequence[str],
    cap: int = 20,
    decode_images: bool = True,
    progress: bool = False,
) -> list[str]:
    """Every problem of ``splits`` of ``dataset`` (up to ``cap`` lines, then
    ``"... and N more"``); an empty list when the data is fine.

    Masks are always decoded (their values are checked). Images are decoded
    too unless ``decode_images=False``, which checks their structure only
    (PNG chunk CRCs, so truncation is still caught) - for large datasets.
    Reads files only; never writes.
    """
    problems: list[str] = []
    problems += dataset.index_problems(list(splits))
    aliases = dataset.split_aliases()
    owner: dict[str, str] = {}  # id -> first split (canonical name) holding it
    checked: set[str] = set()

    todo: list[str] = []
    for split in splits:
        try:
            ids = dataset.ids(split)
        except DatasetError as e:
            problems += e.lines
            continue
        canonical = aliases.get(split, split)
        if not ids:
            problems.append(f"{dataset.root}: empty split {split!r} (no images found)")
            continue
        for sid, n in Counter(ids).items():
            img_path = dataset.paths(sid)[0]
            if n > 1:
                problems.append(f"{img_path}: duplicate id: {n} times in split {split!r}")
            prev = owner.setdefault(sid, canonical)
            if prev != canonical:
                problems.append(f"{img_path}: duplicate id: in both split {prev!r} and split {split!r}")
            if sid not in checked:
                checked.add(sid)
                todo.append(sid)

    it = todo
    if progress:
        from tqdm import tqdm

        it = tqdm(todo, desc=f"validate {dataset.info.name}", unit="img", disable=None)
    for sid in it:
        problems += _check_sample(dataset, sid, decode_images, owner[sid])

    if len(problems) > cap:
        problems = problems[:cap] + [f"... and {len(problems) - cap} more"]
    return problems


def _check_sample(dataset: SegmentationDataset, sid: str, decode_images: bool, split: str) -> list[str]:
    img_path, mask_path = dataset.paths(sid)
    out = []
    has_img, has_mask = img_path.is_file(), mask_path.is_file()
    if not has_img:
        out.append(f"{img_path}: missing image (its mask is {mask_path})")
    if not has_mask and not dataset.may_lack_mask(sid):
        out.append(f"{mask_path}: missing mask for {img_path}{dataset.missing_mask_note(split)}")
    if out:
        return out
    img_hw = mask_hw = None
    if has_mask:  # else a pool image a person has yet to label: its image is all there is to check
        try:
            mask = dataset.decode_mask(mask_path)
            mask_hw = tuple(mask.shape[:2])
        except DatasetError as e:
            out += e.lines
    try:
        if decode_images:
            img_hw = tuple(read_image_file(img_path).shape[-2:])
        else:
            _verify_image(img_path)
            img_hw = image_size(img_path)
    except DatasetError as e:
        out += e.lines
    if img_hw is not None and mask_hw is not None and img_hw != mask_hw:
        out.append(
            f"{img_path}: image is {img_hw[1]}x{img_hw[0]} but its mask {mask_path} "
            f"is {mask_hw[1]}x{mask_hw[0]} (width x height)"
        )
    return out


def ensure_valid(dataset: SegmentationDataset, splits: Sequence[str], cap: int = 20, **kw) -> None:
    """Raise ``DatasetError`` carrying the problem lines when ``validate`` finds any."""
    problems = validate(dataset, splits, cap=cap, **kw)
    if problems:
        raise DatasetError(problems)
