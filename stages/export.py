"""export: a step's picks as a task file an annotation tool imports as it is.

    python stages/export.py --stage export@S-M-sK-label_studio \
        --prepared P --pool NEXT_POOL --scores SCORES --out DIR [--model difficulty.pt]

After select, for the picks a person labels (oracle: human: those without a
mask in the dataset; oracle: simulated: every pick, to look at), DIR holds:
- tasks.json: Label Studio's JSON tasks, one per pick: `image` as a local-files
  URL relative to the dataset's root (serve it with
  LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT set to dataset.path), the sample `id`,
  the `mask` file the person's mask goes to (labels/masks/<stem>.png), its
  score, and for DEAL methods `difficulty`: the difficulty map of the image
  (bright: where the network expects to be wrong), inline as a PNG;
- labeling_config.xml: the project's labeling interface, brush and polygon
  labels named and coloured as the dataset's classes;
- picks.csv: id, image path, mask path, score, difficulty PNG: the same list
  for a person or a tool without Label Studio;
- difficulty/<stem>.png (DEAL methods): the maps, at each image's own size.
Label Studio's JSON export of these tasks becomes masks with
`python tools/labels.py from-label-studio EXPORT.json`.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from stages._shared.configs import load_model, set_threads, train_config  # noqa: E402
from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import atomic_dir, read_json, read_scores  # noqa: E402
from stages._shared.params import check_seed, load_params  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402

from deal.config import EXPORT_FORMATS  # noqa: E402

LABELS = Path("labels/masks")  # where a person's masks go (the label stage reads them there: rounds/label/dvc.yaml)


def main() -> None:
    parser = stage_parser(__doc__, with_next=True, kinds=("export", "export_deal"), pool="the next round's pool (JSON, with the ids this step `added`)",
                          scores="the scores the picks were selected by (scores.csv)", out="the folder to write")
    parser.add_argument("--format", choices=EXPORT_FORMATS, help="by hand: the annotation tool's task format")
    parser.add_argument("--model", type=Path, help="a DEAL method's network with its difficulty branch (difficulty.pt): "
                        "the picks' difficulty maps go into the tasks")
    args = parse_stage_args(parser)
    params = load_params(prepared=args.prepared)
    seed = check_seed(params, args.seed)
    import json

    from deal import labelstudio
    from deal.data.folder import MASK_EXT
    from deal.report import csv_text

    added = read_json(args.pool).get("added", [])
    unmasked = set(args.prepared.unmasked_ids())
    picks = [sid for sid in added if sid in unmasked] if params["oracle"] == "human" else list(added)
    scores = dict(read_scores(args.scores))
    info = args.prepared.info
    root = Path(args.prepared.source["path"])
    maps = difficulty_pngs(params, args, picks, root) if args.model else {}
    rows = []
    for sid in picks:
        row = {"id": sid, "image": labelstudio.local_file_url(sid),
               "mask": str(LABELS / (labelstudio.pick_stem(sid) + MASK_EXT)),
               "seed": seed, "method": args.method, "round": args.next, "score": scores.get(sid)}
        if sid in maps:
            row["difficulty"] = labelstudio.png_data_url(maps[sid])
        rows.append(row)
    listing = csv_text(["id", "image", "mask", "score", "difficulty"], (
        [row["id"], str(root / row["id"]), row["mask"], "" if row["score"] is None else f"{row['score']:.9g}",
         f"difficulty/{labelstudio.pick_stem(row['id'])}.png" if row["id"] in maps else ""] for row in rows))
    with atomic_dir(args.out) as work:
        (work / "tasks.json").write_text(json.dumps(labelstudio.tasks(rows), indent=1) + "\n")
        (work / "labeling_config.xml").write_text(
            labelstudio.labeling_config(info["class_names"], info["palette"], difficulty=bool(maps)))
        (work / "picks.csv").write_text(listing)
        for sid, png in maps.items():
            target = work / "difficulty" / f"{labelstudio.pick_stem(sid)}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(png)
    print(f"export: seed {seed} {args.method} {args.next}: {len(rows)} picks to label -> {args.out}/tasks.json "
          f"(Label Studio; masks go to {LABELS}/<stem>.png)")


def difficulty_pngs(params: dict, args, picks: list[str], root: Path) -> dict[str, bytes]:
    """Each pick's difficulty map (sigmoid of the branch), at the image's own size, as PNG bytes."""
    import io

    import numpy as np
    import torch
    from matplotlib import colormaps
    from PIL import Image
    from deal.data.base import DatasetError, image_size
    from deal.data.memory import InMemorySegmentation
    from deal.figures import CMAP
    from deal.training import difficulty_logits_of

    if not picks:
        return {}
    set_threads(params)
    model = load_model(params, args.model, args.prepared.num_classes)
    if getattr(model, "difficulty", None) is None:
        fail(f"{args.model}: holds no difficulty branch; rerun its difficulty stage (dvc repro -f)")
    cfg = train_config(params, "segmentation", len(picks), epochs=1)
    images, masks = args.prepared.load("train", picks)
    maps = torch.sigmoid(difficulty_logits_of(model, InMemorySegmentation(images, masks), cfg))
    colour = colormaps[CMAP]
    out = {}
    for sid, dmap in zip(picks, maps):
        try:
            height, width = image_size(root / sid)
        except (OSError, DatasetError) as exc:
            fail(f"{root / sid}: unreadable ({exc}); the dataset changed since prepare: rerun `dvc repro`")
        full = torch.nn.functional.interpolate(dmap[None, None], size=(height, width), mode="bilinear", align_corners=False)
        rgb = (colour(full[0, 0].clamp(0, 1).numpy())[..., :3] * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="PNG")
        out[sid] = buffer.getvalue()
    return out


if __name__ == "__main__":
    main()
