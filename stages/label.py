"""label: the oracle answers a step's picks; the next round trains on the answers (no torch).

    python stages/label.py --seed S --method M --round R --next N --prepared P \
        --pool NEXT_POOL --masks labels/masks --out NEXT.labels.npy --record NEXT.labels.json

oracle: simulated: the dataset's own masks answer every pick (they are in the
prepared arrays already); the record says so and the answers file is empty.

oracle: human: every image of the next pool without a mask in the dataset (the
picks of this step and of the steps before) needs one drawn by a person in
the labels folder, `labels/masks/<stem>.png` (the stem as below the dataset's
images/ folder): a PNG of class ids (0..C-1, and the void index), or an RGB
PNG in the dataset's palette (void_color for void), the size of its image.
All of them are checked before anything is written: a missing mask stops the
round with one line (how many, the first ids, where they go), a mask of the
wrong size or with a value that is neither a class nor void stops it naming
the file; masks of images this pool did not ask for are reported and left
out. The answers are resized to dataset.size as prepare resizes masks and
written as one array (rows in sorted id order), with a record of each mask's
file and sha256.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from host import delegate  # noqa: E402

delegate(__file__)  # beside a stage host: fork from it (numpy and torchvision already imported)

from common import (  # noqa: E402
    answered_ids, atomic_path, check_seed, dataset_info, fail, file_sha256, load_params, parse_stage_args, read_json,
    read_pool, stage_parser, unmasked_ids, write_json,
)

SHOWN = 5  # ids named in a "missing" line


def main() -> None:
    args = parse_stage_args(stage_parser(
        __doc__, with_next=True, pool="the next round's pool (JSON, with the ids this step `added`)",
        masks="the folder a person writes masks into (labels/masks)", out="the answers to write (.labels.npy)",
        record="their record to write (.labels.json)"))
    params = load_params()
    seed = check_seed(params, args.seed)
    import numpy as np

    pool = read_pool(args.pool)
    added = read_json(args.pool).get("added", [])
    info = dataset_info()
    size = tuple(info["size"])
    rows = answered_ids(pool.labeled, unmasked_ids())
    where = f"{args.method} seed {seed} {args.next}"
    if params["oracle"] == "simulated":
        if rows:  # prepare lists no unmasked image unless a person labels the pool
            fail(f"{args.prepared}/unmasked.json: lists images without masks, but oracle is simulated; rerun `dvc repro prepare`")
        write_record(args, np.zeros((0, *size), dtype=np.uint8), {
            "oracle": "simulated", "seed": seed, "method": args.method, "round": args.next, "requested": added,
            "answered_by": "the dataset's masks", "labels": {}})
        print(f"label: {where}: {len(added)} picks answered by the dataset's masks (oracle: simulated)")
        return

    masks, files, extra = read_answers(args, rows, info, where)
    write_record(args, masks, {
        "oracle": "human", "seed": seed, "method": args.method, "round": args.next, "requested": added,
        "answered_by": str(args.masks), "labels": {sid: {"file": str(f), "sha256": file_sha256(f)} for sid, f in files.items()},
        "ignored": extra})
    new = [sid for sid in added if sid in files]
    print(f"label: {where}: {len(new)} new masks from {args.masks} ({len(rows)} of the pool's {len(pool.labeled)} "
          f"labeled images drawn by a person)")


def read_answers(args, rows: list[str], info: dict, where: str):
    """Every mask `rows` needs from the labels folder, checked, resized: (N x H x W uint8, id -> file, extras)."""
    import numpy as np
    import torch
    from deal.data.base import DatasetError, DatasetInfo, image_size, read_label_file, resize_pair
    from deal.data.folder import MASK_EXT, stem_of

    labels = Path(args.masks)
    source = read_json(args.prepared / "source.json")
    root = Path(source["path"])
    files = {sid: labels / (stem_of(sid) + MASK_EXT) for sid in rows}
    missing = [sid for sid, f in files.items() if not f.is_file()]
    if missing:
        first = ", ".join(missing[:SHOWN]) + (" ..." if len(missing) > SHOWN else "")
        fail(f"{labels}: {len(missing)} of the {len(rows)} masks {where} needs are missing ({first}); draw each as "
             f"{labels}/<stem>.png (class ids, or the palette; the stem as below {root / 'images'}), then `dvc repro`")
    asked = {stem_of(sid) for sid in rows}
    extra = sorted(p.relative_to(labels).as_posix() for p in labels.rglob(f"*{MASK_EXT}")
                   if p.relative_to(labels).with_suffix("").as_posix() not in asked) if labels.is_dir() else []
    dataset = DatasetInfo.from_dict(info)
    lut = np.full(65536, -1, dtype=np.int16)
    lut[: dataset.num_classes] = np.arange(dataset.num_classes)
    lut[dataset.void_index] = dataset.void_index
    problems, decoded = [], []
    for sid, path in files.items():
        try:
            mask = decode_answer(path, dataset, lut, read_label_file)
        except DatasetError as exc:
            problems += exc.lines
            continue
        want = image_size(root / sid)
        if tuple(mask.shape) != tuple(want):
            problems.append(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {root / sid} is "
                            f"{want[1]}x{want[0]} (width x height); draw it at the image's size")
            continue
        decoded.append(mask)
    if problems:
        fail(problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else []))
    if extra:
        shown = ", ".join(extra[:SHOWN]) + (" ..." if len(extra) > SHOWN else "")
        print(f"label: {where}: {len(extra)} masks in {labels} were not asked for by this pool; left out ({shown})")
    size = tuple(info["size"])
    out = np.zeros((len(decoded), *size), dtype=np.uint8)
    for i, mask in enumerate(decoded):  # as prepare resizes the dataset's masks (nearest-exact)
        image = torch.zeros((3, *mask.shape), dtype=torch.uint8)
        out[i] = resize_pair(image, torch.from_numpy(mask), size)[1].numpy()
    return out, files, extra


def decode_answer(path: Path, info, lut, read_label_file):
    """A person's mask -> H x W uint8 class ids: single-channel (grey or palette PNG indices) as
    ids, RGB through the palette (void_color as void). DatasetError names the file."""
    import numpy as np
    from deal.data.base import DatasetError

    try:
        raw = read_label_file(path)
    except DatasetError as exc:
        if "channels" not in str(exc):
            raise
        rgb = read_label_file(path, color=True).astype(np.int32)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        colours = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(info.palette)}
        void = info.void_color
        colours.setdefault((void[0] << 16) | (void[1] << 8) | void[2], info.void_index)
        values, inverse = np.unique(code, return_inverse=True)
        unknown = [int(v) for v in values if int(v) not in colours]
        if unknown:
            shown = ", ".join(f"({v >> 16}, {(v >> 8) & 255}, {v & 255})" for v in unknown[:4])
            raise DatasetError(f"{path}: colours {shown}{' ...' if len(unknown) > 4 else ''} are neither a palette "
                               f"colour nor void_color {tuple(void)}; paint with the dataset's palette") from None
        return np.array([colours[int(v)] for v in values], dtype=np.uint8)[inverse].reshape(code.shape)
    present = np.flatnonzero(np.bincount(raw.ravel().astype(np.int64), minlength=1))
    bad = present[lut[present] < 0]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8]) + (" ..." if bad.size > 8 else "")
        raise DatasetError(f"{path}: mask values {shown} are neither a class (0..{info.num_classes - 1}) nor void "
                           f"({info.void_index}); write class ids, or paint with the palette")
    return lut[raw].astype(np.uint8)


def write_record(args, masks, record: dict) -> None:
    import numpy as np

    with atomic_path(args.out) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, masks)
    write_json(args.record, record)


if __name__ == "__main__":
    main()
