"""deal.stats on a crafted curves CSV: the intervals and paired differences equal values computed by hand.

Three seeds, two rounds. t(0.975, 2) = 4.302653 (any t table); with n = 3 a
95 % interval is mean +- 4.302653 * s / sqrt(3), s the sample std (ddof 1).
"""

from __future__ import annotations

import pytest

from deal.stats import BETTER, NO_DIFFERENCE, ONE_SEED, WORSE, describe, paired, rows_from_csv, summarize, t_interval, \
    t_quantile

CSV = """seed,method,round,labeled,percent_labeled,miou,pixel_accuracy
0,random,r0,40,10,0.30,0.8
0,random,r1,60,15,0.40,0.8
1,random,r0,40,10,0.32,0.8
1,random,r1,60,15,0.44,0.8
2,random,r0,40,10,0.28,0.8
2,random,r1,60,15,0.42,0.8
0,entropy,r0,40,10,0.35,0.8
0,entropy,r1,60,15,0.45,0.8
1,entropy,r0,40,10,0.38,0.8
1,entropy,r1,60,15,0.50,0.8
2,entropy,r0,40,10,0.32,0.8
2,entropy,r1,60,15,0.46,0.8
0,deal_de,r0,40,10,0.31,0.8
0,deal_de,r1,60,15,0.45,0.8
1,deal_de,r0,40,10,0.35,0.8
1,deal_de,r1,60,15,0.47,0.8
2,deal_de,r0,40,10,0.29,0.8
2,deal_de,r1,60,15,0.43,0.8
"""
T2 = 4.302652729749464  # t(0.975, 2)
HALF = T2 / 3 ** 0.5  # the half-width per unit of sample std at n = 3


def test_t_quantile_is_the_tables():
    assert t_quantile(0.975, 2) == pytest.approx(T2, rel=1e-9)
    assert t_quantile(0.975, 1) == pytest.approx(12.706204736, rel=1e-8)
    assert t_quantile(0.975, 4) == pytest.approx(2.776445105, rel=1e-8)


def test_summary_is_the_mean_and_t_interval_per_method_and_round():
    bands = {(b["method"], b["round"]): b for b in summarize(rows_from_csv(CSV))}
    assert list(bands) == [(m, r) for m in ("random", "entropy", "deal_de") for r in ("r0", "r1")]
    b = bands[("random", "r0")]  # 0.30, 0.32, 0.28: mean 0.30, s 0.02
    assert (b["n"], b["labeled"], b["percent_labeled"], b["seeds"]) == (3, 40, 10.0, [0, 1, 2])
    assert b["mean"] == pytest.approx(0.30) and b["std"] == pytest.approx(0.02)
    assert b["ci_low"] == pytest.approx(0.30 - 0.02 * HALF) and b["ci_high"] == pytest.approx(0.30 + 0.02 * HALF)
    assert b["ci_low"] == pytest.approx(0.250317, abs=1e-6)
    b = bands[("entropy", "r1")]  # 0.45, 0.50, 0.46: mean 0.47, s sqrt((0.0004 + 0.0009 + 0.0001) / 2)
    s = (0.0007) ** 0.5
    assert b["mean"] == pytest.approx(0.47) and b["std"] == pytest.approx(s)
    assert b["ci_high"] == pytest.approx(0.47 + s * HALF)


def test_paired_differences_by_seed_against_the_baseline():
    table = {(p["method"], p["measure"]): p for p in paired(rows_from_csv(CSV), "random", ["r0", "r1"])}
    assert list(table) == [(m, x) for m in ("entropy", "deal_de") for x in ("selected", "auc", "r0", "r1")]
    # entropy - random at r0, seed by seed: 0.05, 0.06, 0.04: mean 0.05, s 0.01, interval above 0
    e = table[("entropy", "r0")]
    assert (e["n"], e["baseline"], e["percent_labeled"], e["seeds"]) == (3, "random", 10.0, [0, 1, 2])
    assert e["mean_diff"] == pytest.approx(0.05) and e["std"] == pytest.approx(0.01)
    assert e["ci_low"] == pytest.approx(0.05 - 0.01 * HALF) and e["ci_low"] == pytest.approx(0.025159, abs=1e-6)
    assert e["verdict"] == BETTER
    # deal_de - random at r1: 0.05, 0.03, 0.01: mean 0.03, s 0.02: the interval [-0.0197, 0.0797] holds 0
    d = table[("deal_de", "r1")]
    assert d["mean_diff"] == pytest.approx(0.03) and d["ci_low"] == pytest.approx(0.03 - 0.02 * HALF)
    assert d["ci_low"] < 0 < d["ci_high"] and d["verdict"] == NO_DIFFERENCE
    # the area under the curve (mean over rounds) per seed: random 0.35, 0.38, 0.35; deal_de 0.38, 0.41, 0.36
    # differences 0.03, 0.03, 0.01: mean 0.02333, s 0.011547
    a = table[("deal_de", "auc")]
    assert a["percent_labeled"] is None
    assert a["mean_diff"] == pytest.approx(0.07 / 3) and a["std"] == pytest.approx((4 / 3 * 1e-4) ** 0.5)
    assert a["ci_low"] == pytest.approx(0.07 / 3 - (4 / 3 * 1e-4) ** 0.5 * HALF)
    assert a["ci_low"] == pytest.approx(-0.005352, abs=1e-6) and a["verdict"] == NO_DIFFERENCE
    assert describe(a) == "+2.33 (95 % CI -0.54 to +5.20, 3 seeds): no difference measured"
    # the headline: the mean over the rounds after the first (here r1 alone), paired by seed
    s = table[("deal_de", "selected")]
    assert s["percent_labeled"] is None and s["seeds"] == [0, 1, 2]
    assert (s["mean_diff"], s["std"], s["ci_low"]) == pytest.approx((d["mean_diff"], d["std"], d["ci_low"]))


def test_the_headline_measure_leaves_round_0_out():
    """Three rounds: "selected" is the mean over r1 and r2 of each seed's difference, whatever r0 says."""
    rows = [{"seed": s, "method": m, "round": r, "labeled": 10, "percent_labeled": 10.0, "miou": v}
            for s, values in ((0, {"random": (0.1, 0.2, 0.3), "deal_ds": (0.9, 0.25, 0.33)}),
                              (1, {"random": (0.1, 0.2, 0.3), "deal_ds": (-0.5, 0.23, 0.31)}))
            for m, curve in values.items() for r, v in zip(("r0", "r1", "r2"), curve)]
    table = {p["measure"]: p for p in paired(rows, "random", ["r0", "r1", "r2"])}
    # per seed: ((0.25 - 0.2) + (0.33 - 0.3)) / 2 = 0.04 and ((0.23 - 0.2) + (0.31 - 0.3)) / 2 = 0.02
    assert table["selected"]["mean_diff"] == pytest.approx(0.03) and table["selected"]["std"] == pytest.approx(0.02 ** 0.5 / 10)
    # the area under the whole curve carries round 0's +0.8 and -0.6
    assert table["auc"]["mean_diff"] == pytest.approx((0.04 * 2 + 0.8 + 0.02 * 2 - 0.6) / 6)


def test_verdicts_follow_the_interval_and_one_seed_gives_none():
    assert t_interval([0.1, 0.1, 0.1]).low == pytest.approx(0.1)  # no spread: a zero-width interval
    assert paired(rows_from_csv(CSV.replace("0,entropy,r0,40,10,0.35", "0,entropy,r0,40,10,0.15")
                                .replace("1,entropy,r0,40,10,0.38", "1,entropy,r0,40,10,0.18")
                                .replace("2,entropy,r0,40,10,0.32", "2,entropy,r0,40,10,0.12")),
                  "random", ["r0", "r1"])[1]["verdict"] == WORSE
    one = [r for r in rows_from_csv(CSV) if r["seed"] == 0]
    (first, *_) = paired(one, "random", ["r0", "r1"])
    assert first["n"] == 1 and first["ci_low"] is None and first["verdict"] == ONE_SEED
    assert describe(first) == "+5.00 (1 seed): one seed: no interval"  # entropy: 0.40 - 0.35
    (band, *_) = summarize(one)
    assert band["n"] == 1 and band["std"] is None and band["ci_low"] is None and band["mean"] == pytest.approx(0.30)


def test_a_seed_missing_a_round_or_the_baseline_is_left_out_of_the_pairs():
    rows = [r for r in rows_from_csv(CSV) if not (r["seed"] == 2 and (r["method"], r["round"]) == ("deal_de", "r1"))]
    rows = [r for r in rows if not (r["seed"] == 1 and r["method"] == "random")]
    table = {(p["method"], p["measure"]): p for p in paired(rows, "random", ["r0", "r1"])}
    assert table[("deal_de", "auc")]["seeds"] == [0] and table[("entropy", "auc")]["seeds"] == [0, 2]


def test_the_figure_draws_bands_and_the_published_curves(tmp_path):
    from deal.figures import plot_curves
    from deal.published import published

    bands = summarize(rows_from_csv(CSV))
    for name, kind, reference in (("synthetic.png", "synthetic", None), ("camvid.png", "camvid", 0.5)):
        plot_curves(bands, tmp_path / name, title=kind, reference=reference, published=published(kind))
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert published("synthetic") is None
    assert (tmp_path / "camvid.png").read_bytes() != (tmp_path / "synthetic.png").read_bytes()
