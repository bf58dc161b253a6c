"""labels: a person's masks into labels/masks/, from an annotation tool's export (not a DVC stage).

    python stages/labels.py from-label-studio EXPORT.json [--masks labels/masks] [--prepared data/prepared]
    python stages/labels.py todo

from-label-studio: Label Studio's JSON export (Export -> JSON) of the tasks the
export stages wrote becomes one PNG of class ids per annotated task, at the
`mask` path the task names (labels/masks/<stem>.png): brush strokes and
polygons painted in the order they were drawn, void where nothing is painted,
from each task's latest annotation that was not skipped. Everything is checked
before the first mask is written (a label that is no class, a stroke of
another size): one line names the task. Tasks nobody annotated are listed.
Then `dvc repro` checks the masks (stages/label.py) and trains the next round.

todo: every pick the exported tasks ask a person for (data/tasks/*/picks.csv)
whose mask is not in the masks folder yet.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import atomic_path, fail, read_json  # noqa: E402

TASKS = Path("data/tasks")


def from_label_studio(args) -> None:
    import numpy as np
    from PIL import Image
    from deal.labelstudio import masks_from_export

    info = read_json(args.prepared / "info.json")
    try:
        export = json.loads(Path(args.export).read_text())
    except FileNotFoundError:
        fail(f"{args.export}: missing; export the project from Label Studio as JSON (Export -> JSON)")
    except (OSError, ValueError) as exc:
        fail(f"{args.export}: not JSON ({exc}); export the project from Label Studio as JSON (Export -> JSON)")
    if not isinstance(export, list):
        fail(f"{args.export}: not a list of tasks; export the project from Label Studio as JSON (Export -> JSON)")
    try:
        masks = masks_from_export(export, info["class_names"], info["void_index"])
    except ValueError as exc:
        fail(f"{args.export}: {exc}")
    folder = Path(args.masks).resolve()
    for name in masks:
        if not Path(name).resolve().is_relative_to(folder):
            fail(f"{args.export}: a task's mask {name!r} is outside {args.masks}; import the tasks deal exported")
    for name, mask in masks.items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(name) as tmp:
            Image.fromarray(np.ascontiguousarray(mask), mode="L").save(tmp, format="PNG")
    open_tasks = [t.get("data", {}).get("id", t.get("id")) for t in export if t.get("data", {}).get("mask") not in masks]
    print(f"labels: {len(masks)} masks written into {args.masks} from {args.export}"
          + (f"; {len(open_tasks)} tasks without an annotation: {', '.join(map(str, open_tasks[:5]))}"
             f"{' ...' if len(open_tasks) > 5 else ''}" if open_tasks else ""))


def todo(args) -> None:
    """The exported picks whose masks are still to draw, one line each (seed, method, round, id, mask)."""
    waiting = []
    for picks in sorted(TASKS.glob("seed*/*/*/*/picks.csv")):
        seed, method, round_id = picks.parts[-5:-2]
        with open(picks, newline="") as f:
            for row in csv.DictReader(f):
                if not Path(row["mask"]).is_file():
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
