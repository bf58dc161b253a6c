"""labels: a person's masks into labels/masks/, from an annotation tool's export (not a DVC stage).

    python tools/labels.py from-label-studio EXPORT.json [--masks labels/masks] [--prepared data/prepared]
    python tools/labels.py todo

from-label-studio: Label Studio's JSON export (Export -> JSON) of the tasks the
export stages wrote becomes one PNG of class ids per annotated task, at the
`mask` path the task names (labels/masks/<stem>.png, where the label stage
reads it) and at the size of the task's image in the dataset: brush strokes
and polygons painted in the order they were drawn, void where nothing is
painted, from each task's latest annotation that was not skipped. Everything
is checked before the first mask is written, one line naming the task: a
label that is no class, a brush stroke drawn on an image of another size (its
declared length is checked before it is decoded), a polygon of fewer than 3
points or with a point that is no number, a region that paints no pixel (one
outside the image), two annotated tasks naming one mask, a mask path other
than the one the label stage reads, an export entry of the wrong type. Tasks
nobody annotated are listed. Then `dvc repro` checks the masks
(stages/label.py) and trains the next round.

todo: every pick the exported tasks ask a person for (data/tasks/*/picks.csv)
whose mask is not in the masks folder yet.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: stages/_shared, deal
from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import atomic_path, read_json  # noqa: E402

TASKS = Path("data/tasks")


def from_label_studio(args) -> None:
    import numpy as np
    from PIL import Image
    from deal.data.base import image_size
    from deal.data.folder import MASK_EXT
    from deal.labelstudio import masks_from_export, pick_stem

    info = read_json(args.prepared / "info.json")
    root = Path(read_json(args.prepared / "source.json")["path"])
    try:
        export = json.loads(Path(args.export).read_text())
    except FileNotFoundError:
        fail(f"{args.export}: missing; export the project from Label Studio as JSON (Export -> JSON)")
    except (OSError, ValueError) as exc:
        fail(f"{args.export}: not JSON ({exc}); export the project from Label Studio as JSON (Export -> JSON)")
    if not isinstance(export, list):
        fail(f"{args.export}: not a list of tasks; export the project from Label Studio as JSON (Export -> JSON)")

    def size_of(sid: str) -> tuple[int, int]:
        """The (height, width) of the dataset's image `sid`: the mask is written at that size."""
        path = root / sid
        if not path.resolve().is_relative_to(root.resolve()) or not path.is_file():
            raise ValueError(f"no image {path} in the dataset ({root}); import the tasks deal exported for this dataset")
        try:
            return image_size(path)
        except Exception as exc:  # PIL raises several kinds for a file that is no image
            raise ValueError(f"its image {path} is unreadable ({type(exc).__name__})") from None

    try:
        masks = masks_from_export(export, info["class_names"], info["void_index"], size_of)
    except ValueError as exc:
        fail(f"{args.export}: {exc}")
    # each mask where the label stage reads its image's mask, and nowhere else
    folder = Path(args.masks)
    for task in export:
        sid, name = task["data"]["id"], task["data"]["mask"]
        if name not in masks:
            continue
        where = folder / (pick_stem(sid) + MASK_EXT)
        label = f"task {task.get('id')} ({sid})"
        if not Path(name).resolve().is_relative_to(folder.resolve()):
            fail(f"{args.export}: {label}: its mask {name!r} is outside {args.masks}; import the tasks deal exported")
        if Path(name).resolve() != where.resolve():
            fail(f"{args.export}: {label}: its mask {name!r} is not {where}, where the label stage reads the mask of "
                 f"{sid}; import the tasks deal exported")
    for name, mask in masks.items():
        with atomic_path(name) as tmp:
            Image.fromarray(np.ascontiguousarray(mask), mode="L").save(tmp, format="PNG")
    open_tasks = [t["data"]["id"] for t in export if t["data"]["mask"] not in masks]
    print(f"labels: {len(masks)} masks written into {args.masks} from {args.export}"
          + (f"; {len(open_tasks)} tasks without an annotation: {', '.join(map(str, open_tasks[:5]))}"
             f"{' ...' if len(open_tasks) > 5 else ''}" if open_tasks else ""))


def todo(args) -> None:
    """The exported picks whose masks are still to draw, one line each (seed, method, round, id, mask)."""
    waiting = []
    for picks in sorted(TASKS.glob("seed*/*/*/*/picks.csv")):
        seed, method, round_id = picks.parts[-5:-2]
        try:
            with open(picks, newline="") as f:
                reader = csv.DictReader(f)
                lacking = [c for c in ("id", "mask") if c not in (reader.fieldnames or [])]
                if lacking:
                    fail(f"{picks}: no {' or '.join(lacking)} column; rerun the export stage that writes it "
                         f"(`dvc repro --force` on its export stage, or delete it and `dvc repro`)")
                rows = list(reader)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            fail(f"{picks}: unreadable ({type(exc).__name__}: {exc}); delete it and `dvc repro` (the export stage writes it)")
        for row in rows:
            if not row["mask"] or not Path(row["mask"]).is_file():
                waiting.append(f"{seed} {method} {round_id}: {row['id']} -> {row['mask']}")
    for line in dict.fromkeys(waiting):
        print(line)
    print(f"labels: {len(waiting)} masks to draw" + ("" if waiting else " (or nothing exported yet: `dvc repro --keep-going`)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("from-label-studio", help="Label Studio's JSON export -> class-id PNGs in the masks folder")
    ls.add_argument("export", type=Path, help="the project's JSON export")
    ls.add_argument("--masks", type=Path, default=Path("labels/masks"), help="the masks folder (the label stage reads it)")
    ls.add_argument("--prepared", type=Path, default=Path("data/prepared"), help="the prepared data (its class names)")
    commands.add_parser("todo", help="the exported picks whose masks are not drawn yet")
    args = parser.parse_args()
    {"from-label-studio": from_label_studio, "todo": todo}[args.command](args)


if __name__ == "__main__":
    main()
