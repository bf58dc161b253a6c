"""End-to-end: the real `dvc repro` on a tiny config in a temporary copy of the repo."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipeline_utils import BIN, LOCKS, REPO, copy_repo, edit_params, repro, run, tiny_params

pytestmark = pytest.mark.slow  # the real dvc repro end to end: `make test-fast` leaves them out

CAMVID = REPO.parent / "shared" / "data" / "CamVid"


METHODS = ("random", "deal_de")  # the project fixture's, seeds 0 and 1
ROUNDS = 2  # r0, r1: one selection step (s0)


def _pool(root: Path, round_id: str, method: str, seed: int = 0) -> dict:
    path = root / "data" / "pools" / f"seed{seed}" / round_id / f"{method}.json"
    return json.loads(path.read_text())


def _csv(root: Path, name: str) -> list[dict]:
    return list(csv.DictReader((root / "metrics" / name).open()))


def test_repro_writes_curves_and_pools_that_grow_by_the_batch(project):
    root, ran = project
    assert "prepare" in ran and "report" in ran
    rows = _csv(root, "curves.csv")
    assert [(r["seed"], r["method"], r["round"]) for r in rows] == [
        (str(s), m, f"r{i}") for s in (0, 1) for m in METHODS for i in range(ROUNDS)]
    assert (root / "metrics" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the DVC metrics are the few numbers experiments compare by, not one file per round
    summary = json.loads((root / "metrics" / "summary.json").read_text())
    assert set(summary) == {"seeds", "random", "deal_de"} and summary["seeds"] == 2
    assert set(summary["random"]) == {"last", "mean"}
    assert set(summary["deal_de"]) == {"last", "mean", "vs_random", "vs_random_low", "vs_random_high", "auroc"}
    shown = json.loads(run([str(BIN / "dvc"), "metrics", "show", "--json"], root).stdout)
    files = {name for workspace in shown.values() for name in workspace["data"]}
    assert files == {"metrics/summary.json", "metrics/reference.json"}, files
    # the plots: the curves, the difficulty table, and the last step's figures of each seed and method
    last = sorted(p.relative_to(root / "metrics" / "last_round").as_posix() for p in (root / "metrics" / "last_round").rglob("*.png"))
    assert last == sorted(f"seed{s}/{m}/r0_{name}.png" for s in (0, 1) for m, names in (
        ("random", ["selection"]), ("deal_de", ["selection", "maps", "levels", "scatter", "selected_difficulty"])) for name in names)
    for seed in (0, 1):
        initial = json.loads((root / "data" / "pools" / f"seed{seed}" / "initial.json").read_text())
        for method in METHODS:
            previous = set(initial["labeled"])
            assert len(previous) == 8 and _pool(root, "r0", method, seed)["labeled"] == initial["labeled"]
            for i in range(1, ROUNDS):
                pool = _pool(root, f"r{i}", method, seed)
                labeled = pool["labeled"]
                assert len(labeled) == len(set(labeled)) == 8 + 4 * i
                assert previous < set(labeled), "a round lost an id"
                assert set(labeled) - previous == set(pool["added"]) and len(pool["added"]) == 4
                assert set(labeled) <= set(pool["split"])
                previous = set(labeled)
    # the difficulty analysis of every DEAL step reaches the report
    analysed = _csv(root, "difficulty.csv")
    assert [(r["seed"], r["method"], r["round"]) for r in analysed] == [
        (s, "deal_de", f"r{i}") for s in ("0", "1") for i in range(ROUNDS - 1)]
    assert 0.0 <= summary["deal_de"]["auroc"] <= 1.0 and "auroc" not in summary["random"]
    # the generated PNGs stay out of data/prepared, the folder every later stage hashes
    assert json.loads((root / "data" / "prepared" / "source.json").read_text()) == {
        "kind": "synthetic", "path": "data/synthetic", "counts": {"train": 40, "val": 8, "test": 16}}
    assert len(list((root / "data" / "synthetic" / "train").glob("*.png"))) == 40
    assert not list((root / "data" / "prepared").rglob("*.png"))
    # every per-(method, round) stage kind has its own small lock
    assert {p.parent.name for p in root.glob("rounds/*/dvc.lock")} == {
        "train", "evaluate", "errors", "difficulty", "score", "score_deal", "select", "label", "analyze"}
    # as published: the baselines' round 0 is a plain network, DEAL's the joint one, each the seed's shared model
    for seed in (0, 1):
        runs = root / "runs" / f"seed{seed}"
        for method, kind in (("random", "segmentation"), ("deal_de", "joint")):
            assert (runs / method / "r0" / "model.pt").read_bytes() == (runs / "initial" / kind / "model.pt").read_bytes()
            assert json.loads((runs / method / "r0" / "train.json").read_text())["mode"] == kind
    import torch

    plain = torch.load(root / "runs" / "seed0" / "initial" / "segmentation" / "model.pt", weights_only=True)
    assert not any(k.startswith("difficulty.") for k in plain)


def test_seeds_draw_their_own_pools_and_the_report_pairs_them(project):
    """Two seeds: different initial pools and models; the summary's bands and the paired table
    are the statistics of the per-seed rows (deal.stats, checked by hand in test_stats)."""
    root, _ = project
    from deal.stats import t_quantile

    pools = [json.loads((root / "data" / "pools" / f"seed{s}" / "initial.json").read_text())["labeled"] for s in (0, 1)]
    assert pools[0] != pools[1] and len(pools[0]) == len(pools[1]) == 8
    assert (root / "runs/seed0/initial/joint/model.pt").read_bytes() != (root / "runs/seed1/initial/joint/model.pt").read_bytes()
    rows = _csv(root, "curves.csv")
    miou = {(r["seed"], r["method"], r["round"]): float(r["miou"]) for r in rows}
    t = t_quantile(0.975, 1)
    bands = _csv(root, "curves_summary.csv")
    assert [(b["method"], b["round"], b["n"]) for b in bands] == [(m, f"r{i}", "2") for m in METHODS for i in range(ROUNDS)]
    for b in bands:
        a, c = miou[("0", b["method"], b["round"])], miou[("1", b["method"], b["round"])]
        half = t * abs(a - c) / 2  # n = 2: s = |a - c| / sqrt(2), s / sqrt(2) = |a - c| / 2
        assert float(b["mean"]) == pytest.approx((a + c) / 2, abs=2e-6)
        # t(0.975, 1) = 12.7 magnifies the CSV's rounding to 6 decimals
        assert float(b["ci_low"]) == pytest.approx((a + c) / 2 - half, abs=2e-5)
        assert float(b["ci_high"]) == pytest.approx((a + c) / 2 + half, abs=2e-5)
        assert b["full_data_miou"] == ""  # the reference was not trained
    paired = _csv(root, "paired.csv")
    assert [(p["method"], p["baseline"], p["measure"]) for p in paired] == [
        ("deal_de", "random", m) for m in ["selected", "auc"] + [f"r{i}" for i in range(ROUNDS)]]
    diffs = [sum(miou[(s, "deal_de", f"r{i}")] - miou[(s, "random", f"r{i}")] for i in range(ROUNDS)) / ROUNDS
             for s in ("0", "1")]
    selected = [miou[(s, "deal_de", "r1")] - miou[(s, "random", "r1")] for s in ("0", "1")]  # the rounds after r0
    assert float(paired[0]["mean_diff"]) == pytest.approx(sum(selected) / 2, abs=2e-6)
    auc = paired[1]
    assert float(auc["mean_diff"]) == pytest.approx(sum(diffs) / 2, abs=2e-6)
    assert float(auc["ci_high"]) - float(auc["ci_low"]) == pytest.approx(t * abs(diffs[0] - diffs[1]), abs=5e-5)
    low, high = float(auc["ci_low"]), float(auc["ci_high"])
    assert auc["verdict"] == ("better" if low > 0 else "worse" if high < 0 else "no difference measured")
    summary = json.loads((root / "metrics" / "summary.json").read_text())
    # in %, as report.md shows it
    assert summary["seeds"] == 2 and summary["deal_de"]["vs_random"] == pytest.approx(50 * sum(selected), abs=2e-4)
    assert (summary["deal_de"]["vs_random_low"], summary["deal_de"]["vs_random_high"]) == \
        pytest.approx((100 * float(paired[0]["ci_low"]), 100 * float(paired[0]["ci_high"])), abs=5e-4)
    report = (root / "metrics" / "report.md").read_text()
    assert "Paired by seed against random" in report and "deal_de vs random" in report


def test_same_seed_gives_the_same_selections(project, tmp_path):
    root, _ = project
    # Rerun seed 1's round-0 models and first scorings and selections from scratch:
    # identical outputs leave every dvc.lock as it was.
    repro(root, "--force", "--single-item", "train_initial@1-segmentation", "train_initial@1-joint",
          "score_deal@1-deal_de-s0", "select@1-deal_de-s0", "score@1-random-s0", "select@1-random-s0")
    assert run(["git", "status", "--porcelain", "--", *LOCKS], root).stdout == ""
    assert repro(root) == []


def test_appending_a_seed_runs_only_its_stages_and_removing_it_leaves_the_others(changed_project):
    root, _ = changed_project
    before = _csv(root, "curves.csv")
    edit_params(root, lambda p: p["seeds"].append(2))
    ran = set(repro(root))
    steps = [f"s{i}" for i in range(ROUNDS - 1)]
    assert ran == {"report", "init@2", "train_initial@2-segmentation", "train_initial@2-joint"} | {
        f"{kind}@2-{m}-r{i}" for m in METHODS for kind in ("train", "evaluate") for i in range(ROUNDS)} | {
        f"{kind}@2-{m}-{step}" for kind in ("select", "label") for m in METHODS for step in steps} | {
        f"score@2-random-{step}" for step in steps} | {
        f"{kind}@2-deal_de-{step}" for kind in ("errors", "difficulty", "score_deal", "analyze") for step in steps}
    rows = _csv(root, "curves.csv")
    assert [r for r in rows if r["seed"] != "2"] == before and {r["seed"] for r in rows} == {"0", "1", "2"}
    assert {b["n"] for b in _csv(root, "curves_summary.csv")} == {"3"}
    # back to two seeds: nothing but the report reruns, and its numbers are the first run's
    edit_params(root, lambda p: p["seeds"].remove(2))
    assert repro(root) == ["report"]
    assert _csv(root, "curves.csv") == before


def test_appending_a_round_runs_only_that_round(changed_project):
    root, _ = changed_project

    def append(params):
        params["rounds"].append({"id": f"r{ROUNDS}"})
        params["steps"].append({"cur": f"r{ROUNDS - 1}", "next": f"r{ROUNDS}"})

    edit_params(root, append)
    ran = set(repro(root))
    expected = {"report"}
    for seed in (0, 1):
        step, new = f"s{ROUNDS - 1}", f"r{ROUNDS}"
        expected |= {f"{kind}@{seed}-{m}-{step}" for kind in ("select", "label") for m in METHODS}
        expected |= {f"{stage}@{seed}-{m}-{new}" for stage in ("train", "evaluate") for m in METHODS}
        expected |= {f"score@{seed}-random-{step}"}
        expected |= {f"{k}@{seed}-deal_de-{step}" for k in ("errors", "difficulty", "score_deal", "analyze")}
    assert ran == expected


def test_a_param_only_one_method_reads_reruns_only_that_method(changed_project):
    root, _ = changed_project
    edit_params(root, lambda p: p["method_cfg"]["deal_de"].update(k=4))
    ran = repro(root)
    assert "score_deal@0-deal_de-s0" in ran and "score_deal@1-deal_de-s0" in ran
    assert all("deal_de" in stage or stage == "report" for stage in ran), ran


def test_push_then_a_fresh_clone_pulls_and_has_nothing_to_run(project, tmp_path):
    root, _ = project
    remote = tmp_path / "remote"
    run([str(BIN / "dvc"), "remote", "add", "-d", "shared", str(remote)], root)
    run([str(BIN / "dvc"), "push"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "remote"], root)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path)
    run([str(BIN / "dvc"), "pull"], clone)
    assert repro(root) == []
    assert "up to date" in run([str(BIN / "dvc"), "status"], clone).stdout.lower()
    assert repro(clone) == []
    assert (clone / "metrics" / "curves.csv").read_text() == (root / "metrics" / "curves.csv").read_text()


@pytest.mark.skipif(not CAMVID.is_dir(), reason="../shared/data/CamVid is not present")
def test_tiny_camvid_run(tmp_path):
    root = copy_repo(tmp_path / "camvid")

    def camvid(params):
        tiny_params(params, methods=("random", "deal_ds"), rounds=2)
        params["dataset"].update(kind="camvid", path=str(CAMVID), test_split="val", resize=[32, 48])
        params["train"]["crop"] = [32, 48]
        params["reference"]["train"] = True

    edit_params(root, camvid)
    ran = repro(root)
    assert "prepare" in ran
    rows = _csv(root, "curves.csv")
    assert len(rows) == 4
    assert all(0.0 <= float(r["miou"]) <= 1.0 for r in rows)
    # val doubles as test here: no checkpoint is picked on it, the last epoch's weights are kept
    record = json.loads((root / "runs" / "seed0" / "deal_ds" / "r1" / "train.json").read_text())
    assert record["checkpoint"] == "last epoch (the test split doubles as validation)" and record["best_val_miou"] is None
    assert record["best_epoch"] == record["epochs"]
    assert "Weights evaluated: last epoch (the test split doubles as validation)." in (root / "metrics" / "report.md").read_text()
    reference = json.loads((root / "metrics" / "reference.json").read_text())  # the full-data line, likewise
    assert reference["checkpoint"] == "last epoch (the test split doubles as validation)" and reference["labeled"] == 367
    ids = json.loads((root / "data" / "prepared" / "ids.json").read_text())
    assert len(ids["train"]) == 367 and len(ids["test"]) == 101
    manifest = json.loads((root / "data" / "prepared" / "source.json").read_text())
    assert manifest == {"kind": "camvid", "path": str(CAMVID), "counts": {"train": 367, "val": 101, "test": 101}}


def test_every_baseline_runs_in_the_pipeline_and_reaches_the_curves(tmp_path):
    root = copy_repo(tmp_path / "baselines")
    methods = ("qbc", "qbc_bald", "coreset", "vaal", "margin", "least_confidence", "learning_loss")

    def baselines(params):
        tiny_params(params, methods=methods, rounds=2)
        params["method_cfg"]["vaal"].update(iterations=4, image_size=32)
        params["method_cfg"]["qbc"]["passes"] = 3
        params["method_train"]["learning_loss"]["hidden"] = 16
        params["reference"]["train"] = True

    edit_params(root, baselines)
    repro(root)
    # every output is ignored by git: a run leaves nothing to commit but its locks
    changed = run(["git", "status", "--porcelain", "--untracked-files=all"], root).stdout.splitlines()
    assert changed and all(line.endswith("dvc.lock") or line == " M params.yaml" for line in changed), changed
    rows = _csv(root, "curves.csv")
    assert {r["method"] for r in rows} == set(methods)
    for method in methods:
        pool = _pool(root, "r1", method)
        assert len(pool["added"]) == 4 and len(set(pool["labeled"])) == 12
    # the full-data reference was trained on all 40 train images and reaches the summary
    summary = json.loads((root / "metrics" / "summary.json").read_text())
    reference = json.loads((root / "metrics" / "reference.json").read_text())
    assert reference["labeled"] == 40 and 0.0 <= reference["miou"] <= 1.0 and summary["full_data"] == pytest.approx(100 * reference["miou"])
    assert reference["checkpoint"] == "best validation mIoU"
    # learning loss trained its own round 0, with its loss module in the same state dict
    import torch

    runs = root / "runs" / "seed0"
    shared = torch.load(runs / "initial" / "segmentation" / "model.pt", weights_only=True)
    own = torch.load(runs / "learning_loss" / "r0" / "model.pt", weights_only=True)
    assert {k for k in own if k.startswith("loss_module.")} and not any(k.startswith("loss_module.") for k in shared)
    assert json.loads((runs / "learning_loss" / "r0" / "train.json").read_text())["mode"] == "learning_loss"
    # no DEAL method here: the baselines' plain round-0 model was trained, the joint one too (deal.mode joint)
    assert (runs / "initial" / "joint" / "model.pt").is_file()
    # core-set's scores are its pick order: the batch gets b..1, the rest 0
    scores = [float(r["score"]) for r in csv.DictReader((runs / "coreset" / "r0" / "scores.csv").open())]
    assert scores[:4] == [4.0, 3.0, 2.0, 1.0] and set(scores[4:]) == {0.0}
