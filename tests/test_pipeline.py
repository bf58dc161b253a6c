"""End-to-end: the real `dvc repro` on a tiny config in a temporary copy of the repo."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipeline_utils import BIN, LOCKS, REPO, copy_repo, edit_params, repro, restore, run, tiny_params  # noqa: F401

CAMVID = REPO.parent / "shared" / "data" / "CamVid"


def _pool(root: Path, round_id: str, method: str) -> dict:
    path = root / "data" / "pools" / round_id / f"{method}.json"
    return json.loads(path.read_text())


def test_repro_writes_curves_and_pools_that_grow_by_the_batch(project):
    root, ran = project
    assert "prepare" in ran and "report" in ran
    rows = list(csv.DictReader((root / "metrics" / "curves.csv").open()))
    assert {(r["method"], r["round"]) for r in rows} == {
        (m, f"r{i}") for m in ("random", "entropy", "deal_de") for i in range(3)
    }
    assert (root / "metrics" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((root / "metrics" / "summary.json").read_text())
    assert set(summary) == {"random", "entropy", "deal_de"}
    initial = json.loads((root / "data" / "pools" / "initial.json").read_text())
    for method in ("random", "entropy", "deal_de"):
        previous = set(initial["labeled"])
        assert len(previous) == 8
        for i in (1, 2):
            pool = _pool(root, f"r{i}", method)
            labeled = pool["labeled"]
            assert len(labeled) == len(set(labeled)) == 8 + 4 * i
            assert previous < set(labeled), "a round lost an id"
            assert set(labeled) - previous == set(pool["added"]) and len(pool["added"]) == 4
            assert set(labeled) <= set(pool["split"])
            previous = set(labeled)
    # the difficulty analysis of every DEAL step reaches the report
    analysed = list(csv.DictReader((root / "metrics" / "difficulty.csv").open()))
    assert [(r["method"], r["round"]) for r in analysed] == [("deal_de", "r0"), ("deal_de", "r1")]
    assert 0.0 <= summary["deal_de"]["difficulty_auroc"] <= 1.0 and "difficulty_auroc" not in summary["random"]
    # the generated PNGs stay out of data/prepared, the folder every later stage hashes
    assert json.loads((root / "data" / "prepared" / "source.json").read_text()) == {
        "kind": "synthetic", "path": "data/synthetic", "counts": {"train": 40, "val": 8, "test": 16}}
    assert len(list((root / "data" / "synthetic" / "train").glob("*.png"))) == 40
    assert not list((root / "data" / "prepared").rglob("*.png"))
    # every per-(method, round) stage kind has its own small lock
    assert {p.parent.name for p in root.glob("rounds/*/dvc.lock")} == {
        "train", "evaluate", "errors", "difficulty", "score", "score_deal", "select", "analyze"}
    # round 0 is the same model for every method
    first = {(root / "runs" / m / "r0" / "model.pt").read_bytes() for m in ("random", "entropy", "deal_de")}
    assert len(first) == 1


def test_same_seed_gives_the_same_selections(project, tmp_path):
    root, _ = project
    # Rerun the shared model and DE's first scoring and selection from scratch:
    # identical outputs leave every dvc.lock as it was.
    repro(root, "--force", "--single-item", "train_initial", "score_deal@deal_de-s0", "select@deal_de-s0",
          "score@entropy-s0", "select@entropy-s0")
    assert run(["git", "status", "--porcelain", "--", *LOCKS], root).stdout == ""
    assert repro(root) == []


def test_appending_a_round_runs_only_that_round(project):
    root, _ = project

    def append(params):
        params["rounds"].append({"id": "r3"})
        params["steps"].append({"cur": "r2", "next": "r3"})

    edit_params(root, append)
    ran = set(repro(root))
    expected = {"report"} | {f"{stage}@{m}-s2" for stage in ("select",) for m in ("random", "entropy", "deal_de")}
    expected |= {f"{stage}@{m}-r3" for stage in ("train", "evaluate") for m in ("random", "entropy", "deal_de")}
    expected |= {"score@random-s2", "score@entropy-s2", "errors@deal_de-s2", "difficulty@deal_de-s2",
                 "score_deal@deal_de-s2", "analyze@deal_de-s2"}
    assert ran == expected
    restore(root)


def test_a_param_only_one_method_reads_reruns_only_that_method(project):
    root, _ = project
    edit_params(root, lambda p: p["method_cfg"]["deal_de"].update(k=4))
    ran = repro(root)
    assert "score_deal@deal_de-s0" in ran
    assert all("deal_de" in stage or stage == "report" for stage in ran), ran
    restore(root)


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
        params["dataset"].update(kind="camvid", path=str(CAMVID), test_split="val", size=[32, 48])
        params["train"]["crop"] = [32, 48]

    edit_params(root, camvid)
    ran = repro(root)
    assert "prepare" in ran
    rows = list(csv.DictReader((root / "metrics" / "curves.csv").open()))
    assert len(rows) == 4
    assert all(0.0 <= float(r["miou"]) <= 1.0 for r in rows)
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
    rows = list(csv.DictReader((root / "metrics" / "curves.csv").open()))
    assert {r["method"] for r in rows} == set(methods)
    for method in methods:
        pool = _pool(root, "r1", method)
        assert len(pool["added"]) == 4 and len(set(pool["labeled"])) == 12
    # the full-data reference was trained on all 40 train images and reaches the summary
    summary = json.loads((root / "metrics" / "summary.json").read_text())
    assert summary["full_data"]["labeled"] == 40 and 0.0 <= summary["full_data"]["miou"] <= 1.0
    # learning loss trained its own round 0, with its loss module in the same state dict
    import torch

    shared = torch.load(root / "runs" / "initial" / "model.pt", weights_only=True)
    own = torch.load(root / "runs" / "learning_loss" / "r0" / "model.pt", weights_only=True)
    assert {k for k in own if k.startswith("loss_module.")} and not any(k.startswith("loss_module.") for k in shared)
    assert json.loads((root / "runs" / "learning_loss" / "r0" / "train.json").read_text())["mode"] == "learning_loss"
    # core-set's scores are its pick order: the batch gets b..1, the rest 0
    scores = [float(r["score"]) for r in csv.DictReader((root / "runs" / "coreset" / "r0" / "scores.csv").open())]
    assert scores[:4] == [4.0, 3.0, 2.0, 1.0] and set(scores[4:]) == {0.0}
