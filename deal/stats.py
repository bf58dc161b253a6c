"""Seeds into uncertainty: per-(method, round) means with Student-t 95 % intervals,
and comparisons with a baseline method paired by seed (no torch).

A curve row is a mapping with at least seed, method, round, labeled,
percent_labeled and miou (one evaluate stage's output). Intervals are
two-sided Student t over seeds: mean +- t(0.975, n - 1) * s / sqrt(n), with s
the sample standard deviation (ddof 1); one seed gives a mean and no
interval. A paired difference is taken seed by seed (the method's curve of
seed S minus the baseline's curve of the same seed S, which started from the
same initial pool), so the interval is over the n per-seed differences.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
BETTER, WORSE, NO_DIFFERENCE, ONE_SEED = "better", "worse", "no difference measured", "one seed: no interval"


@dataclass(frozen=True)
class Interval:
    """A mean over n seeds and its two-sided Student-t interval (None below two seeds)."""

    n: int
    mean: float
    std: float | None
    low: float | None
    high: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else (self.high - self.low) / 2


def t_quantile(p: float, df: int) -> float:
    """The Student-t quantile (scipy.stats.t.ppf)."""
    from scipy.stats import t

    return float(t.ppf(p, df))


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("no values: an interval needs at least one seed")
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(n, mean, None, None, None)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile((1 + confidence) / 2, n - 1) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half)


def verdict(interval: Interval) -> str:
    """What an interval of a difference says: a win only when it excludes 0."""
    if interval.low is None:
        return ONE_SEED
    if interval.low > 0:
        return BETTER
    if interval.high < 0:
        return WORSE
    return NO_DIFFERENCE


def _order(rows: Iterable[Mapping], key: str) -> list:
    return list(dict.fromkeys(r[key] for r in rows))


def curves(rows: Sequence[Mapping]) -> dict[tuple, dict]:
    """{(method, seed): {round: row}}."""
    out: dict[tuple, dict] = {}
    for r in rows:
        out.setdefault((r["method"], r["seed"]), {})[r["round"]] = r
    return out


def summarize(rows: Sequence[Mapping], confidence: float = CONFIDENCE) -> list[dict]:
    """One row per (method, round), in the order they first appear: n seeds, mean, std and interval of mIoU."""
    groups: dict[tuple, list[Mapping]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["round"]), []).append(r)
    out = []
    for (method, round_id), group in groups.items():
        interval = t_interval([r["miou"] for r in group], confidence)
        out.append({
            "method": method, "round": round_id, "labeled": group[0]["labeled"],
            "percent_labeled": group[0]["percent_labeled"], "n": interval.n, "mean": interval.mean,
            "std": interval.std, "ci_low": interval.low, "ci_high": interval.high,
            "seeds": sorted(r["seed"] for r in group),
        })
    return out


def area_under_curve(curve: Mapping[str, Mapping], rounds: Sequence[str]) -> float:
    """The area under a learning curve as the paper's figures weigh it: the mean mIoU over the rounds."""
    return math.fsum(curve[r]["miou"] for r in rounds) / len(rounds)


def complete_seeds(rows: Sequence[Mapping], method: str, rounds: Sequence[str]) -> list:
    """The seeds for which `method` has every round."""
    return [seed for (m, seed), curve in curves(rows).items() if m == method and all(r in curve for r in rounds)]


def method_areas(rows: Sequence[Mapping], rounds: Sequence[str], confidence: float = CONFIDENCE) -> dict[str, Interval]:
    """Per method, the interval of its area under the curve over the seeds that ran every round."""
    by = curves(rows)
    out = {}
    for method in _order(rows, "method"):
        seeds = complete_seeds(rows, method, rounds)
        if seeds:
            out[method] = t_interval([area_under_curve(by[(method, s)], rounds) for s in seeds], confidence)
    return out


# the headline measure: the mean over the rounds that follow a selection (round 0 is the same
# initial pool for every method, so it holds training noise and no selection effect)
SELECTED = "selected"


def paired(rows: Sequence[Mapping], baseline: str, rounds: Sequence[str], confidence: float = CONFIDENCE) -> list[dict]:
    """Every other method against `baseline`, paired by seed: one row for the mean over the rounds
    after the first (measure "selected", the selection effect: the headline), one for the area
    under the whole curve (measure "auc", the mean over every round) and one per round, each with
    the seeds both ran, the mean difference (method - baseline), its interval and the verdict."""
    by = curves(rows)
    base_seeds = set(complete_seeds(rows, baseline, rounds))
    out = []
    for method in _order(rows, "method"):
        if method == baseline:
            continue
        seeds = sorted(s for s in complete_seeds(rows, method, rounds) if s in base_seeds)
        if not seeds:
            continue
        mine, base = [by[(method, s)] for s in seeds], [by[(baseline, s)] for s in seeds]
        measures = [(SELECTED, None, [area_under_curve(a, rounds[1:]) - area_under_curve(b, rounds[1:])
                                      for a, b in zip(mine, base)])] if len(rounds) > 1 else []
        measures += [("auc", None, [area_under_curve(a, rounds) - area_under_curve(b, rounds) for a, b in zip(mine, base)])]
        measures += [(r, mine[0][r]["percent_labeled"], [a[r]["miou"] - b[r]["miou"] for a, b in zip(mine, base)])
                     for r in rounds]
        for measure, percent, diffs in measures:
            interval = t_interval(diffs, confidence)
            out.append({
                "method": method, "baseline": baseline, "measure": measure, "percent_labeled": percent,
                "n": interval.n, "mean_diff": interval.mean, "std": interval.std,
                "ci_low": interval.low, "ci_high": interval.high, "verdict": verdict(interval), "seeds": seeds,
            })
    return out


def describe(row: Mapping, scale: float = 100.0) -> str:
    """One paired row in words, the numbers deciding the wording: `+1.23 (95 % CI -0.40 to +2.86, 5 seeds): no difference measured`."""
    mean = f"{scale * row['mean_diff']:+.2f}"
    if row["ci_low"] is None:
        return f"{mean} ({row['n']} seed): {row['verdict']}"
    return (f"{mean} (95 % CI {scale * row['ci_low']:+.2f} to {scale * row['ci_high']:+.2f}, "
            f"{row['n']} seeds): {row['verdict']}")


def rows_from_csv(text: str) -> list[dict]:
    """The rows of a curves.csv (metrics/curves.csv, or a study's per-seed file) with numbers as numbers."""
    import csv
    import io

    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        rows.append({**r, "seed": int(r["seed"]), "labeled": int(r["labeled"]),
                     "percent_labeled": float(r["percent_labeled"]), "miou": float(r["miou"])})
    return rows
