"""The report's tables, from curve rows of any number of seeds (no torch, no paths).

Shared by the report stage (this run's seeds) and tools/study.py (a study's
committed per-seed files): CSV texts, the DVC metrics dict and the
Markdown report, all from deal.stats.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from deal.stats import SELECTED, describe, method_areas, paired, summarize


def number(value: float | None) -> str:
    """A CSV cell: six decimals, empty where there is no value (an absent class's IoU, one seed's interval)."""
    return "" if value is None else f"{value:.6f}"


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def curves_csv(rows: Sequence[Mapping]) -> str:
    """metrics/curves.csv: one row per (seed, method, round), per-class IoU where the rows carry it."""
    classes = list(rows[0].get("per_class_iou", {})) if rows else []
    return csv_text(
        ["seed", "method", "round", "labeled", "percent_labeled", "miou", "pixel_accuracy"] + [f"iou_{c}" for c in classes],
        ([r["seed"], r["method"], r["round"], r["labeled"], f"{r['percent_labeled']:.4g}", number(r["miou"]),
          number(r.get("pixel_accuracy"))] + [number(r["per_class_iou"][c]) for c in classes] for r in rows))


def training_csv(rows: Sequence[Mapping]) -> str:
    """metrics/training.csv: one row per epoch of every evaluated training (seed, method, round,
    run = "method round seed", epoch, lr, loss, validation mIoU in % where it was validated), the
    training curves of `dvc plots show`."""
    def percent(value):
        return "" if value is None else number(100 * value)

    return csv_text(
        ["seed", "method", "round", "run", "epoch", "lr", "loss", "val_miou"],
        ([r["seed"], r["method"], r["round"], f"{r['method']} {r['round']} seed{r['seed']}", h["epoch"], number(h.get("lr")),
          number(h.get("loss")), percent(h.get("val_miou"))] for r in rows for h in r.get("history") or []))


def summary_csv(bands: Sequence[Mapping], full: float | None) -> str:
    """Per (method, round): seeds, mean, std and 95 % interval; the full-data mIoU on every row (the DVC template's rule)."""
    return csv_text(
        ["method", "round", "labeled", "percent_labeled", "n", "mean", "std", "ci_low", "ci_high", "full_data_miou"],
        ([b["method"], b["round"], b["labeled"], f"{b['percent_labeled']:.4g}", b["n"], number(b["mean"]),
          number(b["std"]), number(b["ci_low"]), number(b["ci_high"]), number(full)] for b in bands))


def paired_csv(comparison: Sequence[Mapping]) -> str:
    return csv_text(
        ["method", "baseline", "measure", "percent_labeled", "n", "mean_diff", "std", "ci_low", "ci_high", "verdict"],
        ([c["method"], c["baseline"], c["measure"], "" if c["percent_labeled"] is None else f"{c['percent_labeled']:.4g}",
          c["n"], number(c["mean_diff"]), number(c["std"]), number(c["ci_low"]), number(c["ci_high"]), c["verdict"]]
         for c in comparison))


def headline_measure(rounds: Sequence[str]) -> str:
    """The paired measure a comparison is stated by: the mean over the rounds after the first
    (deal.stats.SELECTED), or over the one round there is."""
    return SELECTED if len(rounds) > 1 else "auc"


def analyse(rows: Sequence[Mapping], methods: Sequence[str], rounds: Sequence[str], baseline: str | None) -> dict:
    """Everything the report states: the bands, the paired comparison and the DVC metrics (summary.json)."""
    bands = summarize(rows)
    comparison = paired(rows, baseline, rounds) if baseline is not None and baseline in methods else []
    areas = method_areas(rows, rounds)
    summary = {}
    for method in methods:
        first = next(b for b in bands if b["method"] == method and b["round"] == rounds[0])
        last = next(b for b in bands if b["method"] == method and b["round"] == rounds[-1])
        area = areas[method]
        summary[method] = {
            "n_seeds": area.n,
            "first_miou": first["mean"],
            "last_miou": last["mean"],
            "gain": last["mean"] - first["mean"],
            "mean_miou": area.mean,
            "mean_miou_ci_low": area.low,
            "mean_miou_ci_high": area.high,
            "last_miou_ci_low": last["ci_low"],
            "last_miou_ci_high": last["ci_high"],
            "last_labeled": last["labeled"],
        }
    if comparison:
        headline = headline_measure(rounds)
        summary["paired"] = {
            c["method"]: {"baseline": c["baseline"], "measure": headline, "n_seeds": c["n"],
                          "mean_miou_diff": c["mean_diff"], "ci_low": c["ci_low"], "ci_high": c["ci_high"],
                          "verdict": c["verdict"],
                          "all_rounds_diff": next(d["mean_diff"] for d in comparison
                                                  if d["method"] == c["method"] and d["measure"] == "auc"),
                          "last_round_diff": next(d["mean_diff"] for d in comparison
                                                  if d["method"] == c["method"] and d["measure"] == rounds[-1])}
            for c in comparison if c["measure"] == headline}
    return {"bands": bands, "comparison": comparison, "summary": summary}


def comparison_metrics(summary: Mapping, methods: Sequence[str]) -> dict:
    """The few numbers two experiments are compared by (the DVC metrics file: one screen of
    `dvc exp show`, so the keys are short): `seeds`; per method `last` (the last round's mean
    mIoU over seeds) and `mean` (mIoU averaged over the rounds: the area under the curve);
    for a method compared with the baseline, `vs_<baseline>` (the paired mean difference of the
    mIoU over the rounds after the first: the selection effect, round 0 being every method's
    same initial pool) with `vs_<baseline>_low` and `_high` (its 95 % interval; null for one seed); for
    a DEAL method `auroc` (difficulty against error at the last step); `full_data` when the
    reference was computed. mIoU in %, as report.md, curves.png and the DVC plots show it
    (the CSVs and the evaluations hold fractions); the AUROC in [0, 1]. The rest is in the
    report's CSVs."""
    def percent(value):
        return None if value is None else 100 * value

    out = {"seeds": max((summary[m]["n_seeds"] for m in methods), default=0)}
    paired = summary.get("paired", {})
    for method in methods:
        s = summary[method]
        row = {"last": percent(s["last_miou"]), "mean": percent(s["mean_miou"])}
        if method in paired:
            c = paired[method]
            base = f"vs_{c['baseline']}"
            row.update({base: percent(c["mean_miou_diff"]), f"{base}_low": percent(c["ci_low"]),
                        f"{base}_high": percent(c["ci_high"])})
        if "difficulty_auroc" in s:
            row["auroc"] = s["difficulty_auroc"]
        out[method] = row
    if "full_data" in summary:
        out["full_data"] = percent(summary["full_data"]["miou"])
    return out


def pct(value: float | None, signed: bool = False) -> str:
    return "" if value is None else (f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}")


def _with_interval(mean, low, high, signed: bool = False) -> str:
    return pct(mean, signed) + (f" [{pct(low, signed)}, {pct(high, signed)}]" if low is not None else "")


def markdown(title: str, methods: Sequence[str], rounds: Sequence[str], result: Mapping) -> str:
    """The mean curves with their intervals and the paired table, the words following the numbers."""
    bands, summary, comparison = result["bands"], result["summary"], result["comparison"]
    percents = [b["percent_labeled"] for b in bands if b["method"] == methods[0]]
    lines = [f"# {title}", "",
             "mIoU (%), mean over seeds [95 % Student-t interval over seeds; none for one seed]:", "",
             "| method | seeds | " + " | ".join(f"{p:.0f} %" for p in percents) + " | mean over rounds |",
             "|---" * (len(rounds) + 3) + "|"]
    for method in methods:
        cells = [_with_interval(b["mean"], b["ci_low"], b["ci_high"]) for b in bands if b["method"] == method]
        s = summary[method]
        lines.append(f"| {method} | {s['n_seeds']} | " + " | ".join(cells)
                     + f" | {_with_interval(s['mean_miou'], s['mean_miou_ci_low'], s['mean_miou_ci_high'])} |")
    if comparison:
        baseline = comparison[0]["baseline"]
        headline = headline_measure(rounds)
        after = f"mean over rounds {rounds[1]}-{rounds[-1]}" if headline == SELECTED else "mean over rounds"
        lines += ["", f"Paired by seed against {baseline} (method - {baseline}, mIoU points; "
                  "95 % Student-t interval over the per-seed differences). The headline is the mean over the "
                  "rounds after the first (the selection effect: round 0 is every method's same initial pool):", "",
                  f"| method | {after} | mean over all rounds | " + " | ".join(f"{p:.0f} %" for p in percents) + " |",
                  "|---" * (len(rounds) + 3) + "|"]
        for method in dict.fromkeys(c["method"] for c in comparison):
            mine = {c["measure"]: c for c in comparison if c["method"] == method}
            lines.append(f"| {method} | {describe(mine[headline])} | {describe(mine['auc'])} | " + " | ".join(
                _with_interval(mine[r]["mean_diff"], mine[r]["ci_low"], mine[r]["ci_high"], True) for r in rounds) + " |")
        lines.append("")
        for method in dict.fromkeys(c["method"] for c in comparison):
            main = next(c for c in comparison if c["method"] == method and c["measure"] == headline)
            lines.append(f"- {method} vs {baseline}, {after}: {describe(main)}.")
    return "\n".join(lines) + "\n"
