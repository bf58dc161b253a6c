"""report: the active-learning curves from every evaluate stage (no torch).

metrics/curves.csv (one row per method and round), metrics/summary.json (DVC
metrics), metrics/curves.png (the paper's figure, with the full-data
reference as a dashed line when the reference stage computed it) and the CSV as a DVC plot
drawn by the custom template in .dvc/plots/curves.json. From every analyze
stage: metrics/difficulty.csv (per DEAL method and step, how well the
difficulty map finds errors, AUROC, and ranks classes, Spearman), also a DVC
plot, and the last step's figures in the summary.
"""

import csv
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from host import delegate  # noqa: E402

delegate(__file__)  # beside a stage host: fork from it (numpy and matplotlib already imported)

from common import METRICS, atomic_path, fail, load_params, read_json, write_json  # noqa: E402


def main() -> None:
    params = load_params()
    from deal.plots import plot_curves

    rows = [read_stage_output(METRICS / "eval" / method / f"{r['id']}.json", "evaluate")
            for method in params["methods"] for r in params["rounds"]]
    classes = list(rows[0]["per_class_iou"])
    write_csv(METRICS / "curves.csv",
              ["method", "round", "labeled", "percent_labeled", "miou", "pixel_accuracy"] + [f"iou_{c}" for c in classes],
              ([row["method"], row["round"], row["labeled"], f"{row['percent_labeled']:.4g}", number(row["miou"]),
                number(row["pixel_accuracy"])] + [number(row["per_class_iou"][c]) for c in classes] for row in rows))

    summary = {}
    for method in params["methods"]:
        mine = [r for r in rows if r["method"] == method]
        summary[method] = {
            "first_miou": mine[0]["miou"],
            "last_miou": mine[-1]["miou"],
            "gain": mine[-1]["miou"] - mine[0]["miou"],
            "mean_miou": sum(r["miou"] for r in mine) / len(mine),
            "last_labeled": mine[-1]["labeled"],
        }

    analysed = difficulty_rows(params, rows)  # the header alone when no DEAL method runs
    write_csv(METRICS / "difficulty.csv",
              ["method", "round", "labeled", "percent_labeled", "auroc", "spearman", "error_share"],
              ([r["method"], r["round"], r["labeled"], f"{r['percent_labeled']:.4g}", number(r["auroc"]),
                number(r["spearman"]), number(r["error_share"])] for r in analysed))
    for r in analysed:  # rows run in round order: the last one of a method wins
        summary[r["method"]].update(difficulty_auroc=r["auroc"], difficulty_spearman=r["spearman"])

    reference = read_json(METRICS / "reference.json")
    full = reference["miou"] if reference.get("computed") else None
    if full is not None:
        summary["full_data"] = {"miou": full, "labeled": reference["labeled"]}
    write_json(METRICS / "summary.json", summary)
    with atomic_path(METRICS / "curves.png") as tmp:
        plot_curves(rows, tmp, title=f"{params['dataset']['kind']}: mIoU vs labeled data", reference=full)
    for method, s in ((m, v) for m, v in summary.items() if m in params["methods"]):
        line = (f"report: {method:>16}: mIoU {100 * s['first_miou']:.2f} -> {100 * s['last_miou']:.2f} "
                f"({s['last_labeled']} labeled), mean {100 * s['mean_miou']:.2f}")
        if "difficulty_auroc" in s:
            line += f"; difficulty AUROC {s['difficulty_auroc']:.3f}, Spearman {s['difficulty_spearman']:.3f}"
        print(line)


def difficulty_rows(params: dict, curve_rows: list[dict]) -> list[dict]:
    """One row per DEAL method in `methods` and step, from metrics/eval/<m>/<r>_difficulty.json."""
    curve = {(r["method"], r["round"]): r for r in curve_rows}
    out = []
    for method in (m for m in params["methods"] if m in params["deal_methods"]):
        for step in params["steps"]:
            found = read_stage_output(METRICS / "eval" / method / f"{step['cur']}_difficulty.json", "analyze")
            at = curve[(method, step["cur"])]
            out.append({"method": method, "round": step["cur"], "labeled": at["labeled"],
                        "percent_labeled": at["percent_labeled"], "auroc": found["auroc_difficulty_vs_error"],
                        "spearman": found["spearman_difficulty_vs_1_minus_iou"], "error_share": found["error_share"]})
    return out


def read_stage_output(path: Path, stage: str) -> dict:
    if not path.is_file():
        fail(f"{path}: missing; run `dvc repro` (or `dvc pull`) so every {stage} stage has run")
    return read_json(path)


def number(value: float | None) -> str:
    """A CSV cell: six decimals, empty for a class absent from test set and prediction (IoU None)."""
    return "" if value is None else f"{value:.6f}"


def write_csv(path: Path, header: list[str], rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())


if __name__ == "__main__":
    main()
