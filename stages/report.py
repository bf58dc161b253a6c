"""report: the active-learning curves of every seed, their bands and the paired comparison (no torch).

Every path comes from dvc.yaml's report stage: the evaluate and analyze
outputs as patterns ({seed}, {method}, {round}), the reference, and each file
written (named below by its default place). From every evaluate stage of
every seed in `seeds`:
- metrics/curves.csv: one row per (seed, method, round), a DVC plot (one line per seed);
- metrics/curves_summary.csv: per (method, round) the number of seeds, mean, std
  and Student-t 95 % interval of mIoU, drawn by the DVC template
  .dvc/plots/band.json (mean, shaded band, full-data reference when computed);
- metrics/paired.csv: every method against `baseline_ref`, paired by seed: the
  area under the learning curve (mean mIoU over rounds) and each round's
  difference, with its 95 % interval and what it says (a win only when the
  interval excludes 0);
- metrics/summary.json (DVC metrics, so `dvc exp show` lists them): only the
  numbers two experiments are compared by (deal.report.comparison_metrics: per
  method last and mean mIoU, the paired difference to the baseline with its
  interval, the difficulty AUROC), and metrics/report.md (the tables in words);
- metrics/training.csv: every evaluated training's history per epoch (loss, lr,
  validation mIoU), the training curves of `dvc plots show`;
- metrics/curves.png: the paper's figure, mean and band per method, the
  full-data reference dashed when the reference stage computed it, and for
  CamVid and Cityscapes the published curves (deal.published) dashed beside ours.
From every analyze stage: metrics/difficulty.csv (per seed, DEAL method and
step, how well the difficulty map finds errors, AUROC, and ranks classes,
Spearman), also a DVC plot, and its last step's mean over seeds in the summary.

Without a test split (your own images, oracle: human, no labelled test images)
no round is scored: report.md and curves.png say so, the CSVs hold the labeled
counts without mIoU, and summary.json each method's labeled images.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)  # beside a stage host: fork from it (numpy and matplotlib already imported)

from stages._shared.errors import fail, missing  # noqa: E402
from stages._shared.files import atomic_dir, atomic_path, read_json, write_json  # noqa: E402
from stages._shared.params import load_params  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402

DIFFICULTY_COLUMNS = ["seed", "method", "round", "labeled", "percent_labeled", "auroc", "spearman", "error_share"]


def main() -> None:
    args = parse_stage_args(stage_parser(
        __doc__, per_round=False, with_prepared=False,
        evaluations="an evaluate output's path, with {seed}, {method} and {round} in it",
        analyses="an analyze output's path, with {seed}, {method} and {round} in it",
        reference="the reference stage's output (JSON)", curves="curves.csv to write", bands="curves_summary.csv to write",
        paired="paired.csv to write", difficulty="difficulty.csv to write", markdown="report.md to write",
        summary="summary.json to write", figure="curves.png to write", training="training.csv to write",
        figures="a round's figures folder, with {seed}, {method} and {round} in it",
        last_figures="the folder to write the last step's figures into, per seed and method (DVC plots)"))
    params = load_params()
    from deal.figures import plot_curves
    from deal.published import published
    from deal.report import analyse, comparison_metrics, csv_text, curves_csv, training_csv, markdown, number, paired_csv, summary_csv

    seeds, methods, rounds = params["seeds"], params["methods"], [r["id"] for r in params["rounds"]]
    rows = []
    for seed in seeds:
        for method in methods:
            for r in rounds:
                row = read_stage_output(Path(str(args.evaluations).format(seed=seed, method=method, round=r)), "evaluate")
                rows.append({**row, "seed": seed})  # the folder it was read from
    figures = last_figures(params, str(args.figures))
    if all(row["miou"] is None for row in rows):
        return unscored(args, params, rows, figures)
    reference = read_json(args.reference)
    full = reference["miou"] if reference.get("computed") else None
    result = analyse(rows, methods, rounds, params["baseline_ref"])
    summary = result["summary"]

    analysed = difficulty_rows(params, rows, str(args.analyses))  # the header alone when no DEAL method runs
    last_step = params["steps"][-1]["cur"] if params["steps"] else None
    for method in dict.fromkeys(r["method"] for r in analysed):
        at_last = [r for r in analysed if r["method"] == method and r["round"] == last_step]
        summary[method].update(difficulty_auroc=mean_of(r["auroc"] for r in at_last),
                               difficulty_spearman=mean_of(r["spearman"] for r in at_last))
    if full is not None:
        summary["full_data"] = {"miou": full, "labeled": reference["labeled"]}

    kind = params["dataset"]["kind"]
    text = markdown(f"report: {kind}, seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}", methods, rounds, result)
    kept = sorted({r["checkpoint"] for r in rows if r.get("checkpoint")})
    if kept:  # what train kept: the best-validation weights, or the last epoch's where val is the test split
        text += f"\nWeights evaluated: {'; '.join(kept)}.\n"
    outputs = {
        args.curves: curves_csv(rows),
        args.bands: summary_csv(result["bands"], full),
        args.paired: paired_csv(result["comparison"]),
        args.difficulty: csv_text(
            DIFFICULTY_COLUMNS,
            ([r["seed"], r["method"], r["round"], r["labeled"], f"{r['percent_labeled']:.4g}", number(r["auroc"]),
              number(r["spearman"]), number(r["error_share"])] for r in analysed)),
        args.markdown: text,
        args.training: training_csv(rows),
    }
    write_outputs(args, outputs, comparison_metrics(summary, methods), figures, text, lambda tmp: plot_curves(
        result["bands"], tmp, title=f"{kind}: mIoU vs labeled data ({len(seeds)} seed{'s' * (len(seeds) > 1)})",
        reference=full, published=published(kind)))


def unscored(args, params: dict, rows: list[dict], figures) -> None:
    """No test split, so no curve: the outputs say that, with what each round labeled."""
    from deal.figures import notice_figure
    from deal.report import csv_text, curves_csv, paired_csv, summary_csv, training_csv

    methods, rounds = params["methods"], [r["id"] for r in params["rounds"]]
    labeled = {(r["method"], r["round"]): r["labeled"] for r in rows}
    why = ("No labelled test split: the rounds are not scored (no mIoU, no curves). Put labelled test images into "
           "your dataset (images/test/ with their masks in masks/test/) to score every round.")
    text = (f"# report: {params['dataset']['kind']}, oracle {params['oracle']}\n\n{why}\n\nLabeled images per round:\n\n"
            f"| method | {' | '.join(rounds)} |\n|---|{'---|' * len(rounds)}\n"
            + "".join(f"| {m} | {' | '.join(str(labeled[(m, r)]) for r in rounds)} |\n" for m in methods))
    outputs = {
        args.curves: curves_csv(rows),
        args.bands: summary_csv([], None),
        args.paired: paired_csv([]),
        args.difficulty: csv_text(DIFFICULTY_COLUMNS, []),
        args.markdown: text,
        args.training: training_csv(rows),
    }
    write_outputs(args, outputs, {"scored": False, **{m: {"labeled": labeled[(m, rounds[-1])]} for m in methods}},
                  figures, text, lambda tmp: notice_figure("no labelled test split: the rounds are not scored", tmp))


def write_outputs(args, texts: dict, summary: dict, figures, report_text: str, draw) -> None:
    """Every output of the report: the text files, summary.json, the figure (`draw(path)`), the
    last step's figures; then the report in words."""
    for path, content in texts.items():
        with atomic_path(path) as tmp:
            tmp.write_text(content)
    write_json(args.summary, summary)
    with atomic_path(args.figure) as tmp:
        draw(tmp)
    copy_files(figures, args.last_figures)
    print(report_text, end="")


def last_figures(params: dict, pattern: str) -> list[tuple[Path, str]]:
    """The last step's figures of every seed and method (source, place under --last-figures):
    `dvc plots show` shows these; every round's stay files under figures/, which on one page
    would bury the curves."""
    last = params["steps"][-1]["cur"] if params["steps"] else None
    found = []
    for seed in params["seeds"] if last else []:
        for method in params["methods"]:
            source = Path(pattern.format(seed=seed, method=method, round=last))
            pngs = sorted(source.glob("*.png"))
            if not pngs:
                missing(source / "selection.png")
            found += [(png, f"seed{seed}/{method}/{last}_{png.name}") for png in pngs]
    return found


def copy_files(files: list[tuple[Path, str]], out: Path) -> None:
    import shutil

    with atomic_dir(out) as tmp:
        for source, name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / name)


def mean_of(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def difficulty_rows(params: dict, curve_rows: list[dict], pattern: str) -> list[dict]:
    """One row per seed, DEAL method in `methods` and step, from the analyze outputs (`pattern`)."""
    curve = {(r["seed"], r["method"], r["round"]): r for r in curve_rows}
    out = []
    for seed in params["seeds"]:
        for method in (m for m in params["methods"] if m in params["deal_methods"]):
            for step in params["steps"]:
                found = read_stage_output(Path(pattern.format(seed=seed, method=method, round=step["cur"])), "analyze")
                at = curve[(seed, method, step["cur"])]
                out.append({"seed": seed, "method": method, "round": step["cur"], "labeled": at["labeled"],
                            "percent_labeled": at["percent_labeled"], "auroc": found["auroc_difficulty_vs_error"],
                            "spearman": found["spearman_difficulty_vs_1_minus_iou"], "error_share": found["error_share"]})
    return out


def read_stage_output(path: Path, stage: str) -> dict:
    if not path.is_file():
        fail(f"{path}: missing; run `dvc repro` (or `dvc pull`) so every {stage} stage has run")
    return read_json(path)


if __name__ == "__main__":
    main()
