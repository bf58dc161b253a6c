"""label: the oracle answers a step's picks; the next round trains on the answers (no torch).

    python stages/label.py --seed S --method M --round R --next N --prepared P \
        --pool NEXT_POOL --masks labels/masks --out NEXT.labels.npy --record NEXT.labels.json

oracle: simulated: the dataset's own masks answer every pick (they are in the
prepared arrays already); the record says so and the answers file is empty.

oracle: human: every image of the next pool without a mask in the dataset (the
picks of this step and of the steps before) needs one drawn by a person in
the labels folder, `labels/masks/<stem>.png` (the stem as below the dataset's
images/ folder): a PNG of class ids (0..C-1, and the void index; grey of any
bit depth, a 1-bit mask holding 0 and 1, or a palette PNG's indices), or an
RGB PNG in the dataset's palette (void_color for void; no transparent
pixels), the size of its image.
All of them are checked before anything is written: a missing mask stops the
round with one line (how many, the first ids, where they go), a mask of the
wrong size or with a value that is neither a class nor void stops it naming
the file; masks of images this pool did not ask for are reported and left
out. The answers are resized to dataset.resize as prepare resizes masks and
written as one array (rows in sorted id order), with a record of each mask's
file and sha256.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)  # beside a stage host: fork from it (numpy and torchvision already imported)

from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import file_sha256, read_pool, write_json, write_npy  # noqa: E402
from stages._shared.params import check_seed, load_params  # noqa: E402
from stages._shared.prepared import answered_ids  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402

SHOWN = 5  # ids named in a "missing" line


def main() -> None:
    args = parse_stage_args(stage_parser(
        __doc__, with_next=True, pool="the next round's pool (JSON, with the ids this step `added`)",
        masks="the folder a person writes masks into (labels/masks)", out="the answers to write (.labels.npy)",
        record="their record to write (.labels.json)"))
    params = load_params(prepared=args.prepared)
    seed = check_seed(params, args.seed)
    import numpy as np

    pool, added = read_pool(args.pool, with_added=True)
    info = args.prepared.info
    size = tuple(info["size"])
    rows = answered_ids(pool.labeled, args.prepared.unmasked_ids())
    where = f"{args.method} seed {seed} {args.next}"
    if params["oracle"] == "simulated":
        if rows:  # prepare lists no unmasked image unless a person labels the pool
            fail(f"{args.prepared}/unmasked.json: lists images without masks, but oracle is simulated; rerun `dvc repro prepare`")
        write_npy(args.out, np.zeros((0, *size), dtype=np.uint8))
        write_json(args.record, {
            "oracle": "simulated", "seed": seed, "method": args.method, "round": args.next, "requested": added,
            "answered_by": "the dataset's masks", "labels": {}})
        print(f"label: {where}: {len(added)} picks answered by the dataset's masks (oracle: simulated)")
        return

    masks, files, extra = read_answers(args, rows, info, where)
    write_npy(args.out, masks)
    write_json(args.record, {
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
    from deal.data.base import DatasetError, DatasetInfo, image_size, index_lut, resize_mask
    from deal.data.folder import MASK_EXT, stem_of

    labels = Path(args.masks)
    source = args.prepared.source
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
    lut = index_lut(dataset)
    problems, decoded = [], []
    for sid, path in files.items():
        try:
            mask = decode_answer(path, dataset, lut)
        except DatasetError as exc:
            problems += [f"{line}; write class ids, or paint with the palette" for line in exc.lines]
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
    for i, mask in enumerate(decoded):  # as prepare resizes the dataset's masks
        out[i] = resize_mask(torch.from_numpy(mask), size).numpy()
    return out, files, extra


def decode_answer(path: Path, info, lut):
    """A person's mask -> H x W uint8 class ids: a single-channel PNG (grey, or a palette PNG's
    indices) holds the ids, an RGB one is painted in the palette (void_color as void), as a
    folder dataset's masks of either mask_format are read. DatasetError names the file."""
    from PIL import Image
    from deal.data.base import DatasetError, index_mask, read_label_file
    from deal.data.folder import colour_mask

    try:
        with Image.open(path) as image:
            single = len(image.getbands()) == 1
    except Exception as exc:  # PIL raises several kinds for a file that is no image
        raise DatasetError(f"{path}: unreadable or truncated mask ({type(exc).__name__})") from None
    if single:
        return index_mask(read_label_file(path), lut, info, str(path))
    return colour_mask(read_label_file(path, color=True), info, str(path))


if __name__ == "__main__":
    main()
