"""analyze: what the difficulty branch sees, per DEAL method and round, on the test split.

- metrics/eval/seed<S>/<m>/<r>_difficulty.json (DVC metrics): Spearman between each class's
  mean difficulty and 1 - IoU, the AUROC of difficulty as a predictor of the
  error mask over test pixels, the hardest classes;
- metrics/eval/seed<S>/<m>/<r>_difficulty_classes.csv: mean difficulty and IoU per class;
- figures/seed<S>/<m>/<r>/: maps.png (image | ground truth | prediction | difficulty | error for a
  fixed, seeded set of test images), levels.png (one image split into DE's k
  levels), scatter.png (one point per class), selected.png (the images this
  round selected, with their difficulty maps:
  selected_difficulty.png; select draws selection.png for every method).

Without a test split (your own images, oracle: human, no labelled test images)
nothing is measured: the measures are null and the three test figures say so;
the selected images are still drawn with their maps.
"""

import math
import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)

from stages._shared.configs import load_model, set_threads, train_config  # noqa: E402
from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import atomic_path, read_json, read_scores, write_json  # noqa: E402
from stages._shared.params import check_seed, load_params  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402

EXAMPLES = 6  # test images in the map figure


def _finite(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def evaluated_iou(path, class_names) -> list[float]:
    """The per-class IoU evaluate measured on the test split: difficulty.pt segments as model.pt
    does (joint: the same weights; decoupled: the network frozen), so it is not measured again."""
    per_class = read_json(path).get("per_class_iou") or {}
    if list(per_class) != list(class_names):
        fail(f"{path}: its classes are not the prepared data's; rerun its evaluate stage (dvc repro)")
    return [float("nan") if v is None else float(v) for v in per_class.values()]


def main() -> None:
    args = parse_stage_args(stage_parser(
        __doc__, model="the round's network with its difficulty branch (difficulty.pt)",
        evaluation="the round's evaluation (evaluate's JSON: the per-class IoU of the same segmentation)",
        scores="its scores (scores.csv)", next_pool="the next round's pool (JSON: what the scores selected)",
        out="the measures to write (JSON)", classes="the per-class table to write (CSV)",
        maps="figure: test images, ground truth, prediction, difficulty, error (PNG)", levels="figure: one image in DE's levels (PNG)",
        scatter="figure: per class, difficulty against 1 - IoU (PNG)",
        selected="figure: the selected images with their difficulty maps (PNG)"))
    params = load_params(prepared=args.prepared)
    seed = check_seed(params, args.seed)
    import numpy as np
    import torch
    from deal.analysis import analyze_difficulty, class_table_csv, example_indices
    from deal.data.base import DatasetInfo
    from deal.data.memory import InMemorySegmentation
    from deal.figures import class_scatter, difficulty_levels_figure, difficulty_map_figure, selection_gallery
    from deal.training import difficulty_logits_of

    set_threads(params)
    info_dict = args.prepared.info
    info = DatasetInfo.from_dict(info_dict)
    model = load_model(params, args.model, args.prepared.num_classes)
    cfg = train_config(params, "segmentation", 1, epochs=1)
    method_cfg = params["method_cfg"][args.method]
    k, span = method_cfg.get("k", 8), method_cfg.get("span", "image")

    images, masks = args.prepared.load("test")
    if not len(images):
        return unscored(args, model, cfg, seed)
    examples = example_indices(len(images), EXAMPLES, seed=seed)
    iou = evaluated_iou(args.evaluation, info.class_names)
    found = analyze_difficulty(model, InMemorySegmentation(images, masks), cfg, info.class_names, info.void_index, examples,
                               iou=iou)
    summary, example_maps, example_errors = found["summary"], found["maps"], found["errors"]

    chosen = np.array(examples)
    with atomic_path(args.maps) as tmp:
        difficulty_map_figure(images[chosen].numpy(), masks[chosen].numpy(),
                              np.stack([found["predictions"][i] for i in examples]), np.stack([example_maps[i] for i in examples]),
                              np.stack([example_errors[i] for i in examples]), info, tmp,
                              title=f"{args.method} {args.round}", ids=[args.prepared.ids("test")[i] for i in examples])
    with atomic_path(args.levels) as tmp:
        difficulty_levels_figure(images[examples[0]].numpy(), example_maps[examples[0]], k, span, tmp,
                                 title=f"{args.method} {args.round}: {k} difficulty levels ({span} span)")
    with atomic_path(args.scatter) as tmp:
        class_scatter(summary["rows"], tmp, rho=summary["spearman"], title=f"{args.method} {args.round}")

    draw_selected(args, model, cfg)

    with atomic_path(args.classes) as tmp:
        tmp.write_text(class_table_csv(summary["rows"]))
    write_json(args.out, {
        "spearman_difficulty_vs_1_minus_iou": _finite(summary["spearman"]),
        "auroc_difficulty_vs_error": _finite(summary["auroc"]),
        "mean_difficulty_error": _finite(summary["mean_difficulty_error"]),
        "mean_difficulty_right": _finite(summary["mean_difficulty_right"]),
        "error_share": summary["error_share"],
        "hardest": summary["hardest"],
    })
    print(f"analyze: seed {seed} {args.method} {args.round}: Spearman(difficulty, 1 - IoU) {summary['spearman']:.3f}, "
          f"AUROC(difficulty -> error) {summary['auroc']:.3f}, hardest: {', '.join(summary['hardest'])}")


def draw_selected(args, model, cfg) -> None:
    """The images this round's scores selected, with their difficulty maps (no masks needed:
    with a person as the oracle they are not drawn yet)."""
    import torch
    from deal.data.memory import InMemorySegmentation
    from deal.figures import selection_gallery
    from deal.training import difficulty_logits_of

    added = read_json(args.next_pool)["added"]
    scores = dict(read_scores(args.scores))
    sel_images, sel_masks = args.prepared.load("train", added)
    sel_maps = torch.sigmoid(difficulty_logits_of(model, InMemorySegmentation(sel_images, sel_masks), cfg)).numpy()
    with atomic_path(args.selected) as tmp:
        selection_gallery(sel_images.numpy(), [scores[i] for i in added], added, tmp,
                          difficulty=sel_maps, title=f"{args.method}: selected after {args.round}")


def unscored(args, model, cfg, seed: int) -> None:
    """No test split: the measures null, the test figures saying why, the selection drawn."""
    from deal.analysis import class_table_csv
    from deal.figures import notice_figure

    why = f"{args.method} {args.round}: no labelled test split, nothing measured"
    for path in (args.maps, args.levels, args.scatter):
        with atomic_path(path) as tmp:
            notice_figure(why, tmp)
    draw_selected(args, model, cfg)
    with atomic_path(args.classes) as tmp:
        tmp.write_text(class_table_csv([]))
    write_json(args.out, {"spearman_difficulty_vs_1_minus_iou": None, "auroc_difficulty_vs_error": None,
                          "mean_difficulty_error": None, "mean_difficulty_right": None, "error_share": None,
                          "hardest": [], "test_images": 0})
    print(f"analyze: seed {seed} {why}")


if __name__ == "__main__":
    main()
