"""stages/study.py: a study's per-seed files in, its recipe guarded, its tables from the files alone."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # the real dvc repro end to end: `make test-fast` leaves them out

REPO = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).parent / "dvc")


def _study(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "stages" / "study.py"), *args], cwd=root,
                          capture_output=True, text=True)


def _curves(seeds, methods, rounds) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["seed", "method", "round", "labeled", "percent_labeled", "miou", "pixel_accuracy"])
    for s in seeds:
        for i, m in enumerate(methods):
            for k, r in enumerate(rounds):
                writer.writerow([s, m, r, 40 + 20 * k, 10 + 5 * k, f"{0.2 + 0.01 * k + 0.003 * i + 0.002 * s:.6f}", "0.8"])
    return out.getvalue()


# a stand-in for the pipeline: its report copies curves_src.csv to metrics/curves.csv, reading the
# params a study's seed changes, so `dvc status` tells a current curves.csv from a stale one
PIPELINE = {"stages": {"report": {
    "cmd": f"{sys.executable} -c \"import shutil; shutil.copy('curves_src.csv', 'metrics/curves.csv')\"",
    "deps": ["curves_src.csv"], "params": ["seeds", "train.lr"], "outs": [{"metrics/curves.csv": {"cache": False}}]}}}


def _produce(root: Path, curves: str) -> None:
    (root / "curves_src.csv").write_text(curves)
    done = subprocess.run([DVC, "repro", "-q"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_collect_keeps_each_seed_guards_the_recipe_and_assemble_reads_the_files(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    methods, rounds = params["methods"], [r["id"] for r in params["rounds"]]
    params["seeds"] = [0, 1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "metrics").mkdir()
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    _produce(tmp_path, _curves([0, 1], methods, rounds))
    done = _study(tmp_path, "collect", "studies/x")
    assert done.returncode == 0, done.stderr
    study = tmp_path / "studies" / "x"
    assert {p.name for p in study.iterdir()} >= {"recipe.yaml", "seed0.csv", "seed1.csv", "seeds.json", "summary.csv",
                                                  "paired.csv", "report.md", "curves.png"}
    assert "seeds" not in yaml.safe_load((study / "recipe.yaml").read_text())
    rows = list(csv.DictReader((study / "summary.csv").open()))
    assert {r["n"] for r in rows} == {"2"}
    # a later session: another seed of the same recipe joins; other params are refused
    params["seeds"] = [2]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _produce(tmp_path, _curves([2], methods, rounds))
    # ... but not from a machine that ran it in another precision, unless asked to (--mixed)
    manifest = (study / "seeds.json").read_text()
    ran_here = json.loads(manifest)["0"]["precision"]
    (study / "seeds.json").write_text(manifest.replace(f'"precision": "{ran_here}"', '"precision": "fp16"'))
    mixed = _study(tmp_path, "collect", "studies/x")
    assert mixed.returncode == 1 and mixed.stderr.startswith(
        f"error: studies/x/seeds.json: the study's other seeds ran in cpu fp16, this run in cpu {ran_here};")
    assert not (study / "seed2.csv").exists()
    assert _study(tmp_path, "collect", "studies/x", "--mixed").returncode == 0
    assert "(fp16)" in (study / "report.md").read_text()
    (study / "seeds.json").write_text(manifest)
    assert _study(tmp_path, "collect", "studies/x").returncode == 0
    assert {r["n"] for r in csv.DictReader((study / "summary.csv").open())} == {"3"}
    # the same numbers again keep the seed's record of the run that produced them
    recorded = (study / "seeds.json").read_text()
    again = _study(tmp_path, "collect", "studies/x")
    assert again.returncode == 0 and "seed 2 already in the study with these numbers" in again.stdout
    assert (study / "seeds.json").read_text() == recorded
    # params.yaml changed since the last `dvc repro`: metrics/curves.csv is not its result
    params["seeds"] = [3]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stale = _study(tmp_path, "collect", "studies/x")
    assert stale.returncode == 1 and stale.stderr.startswith(
        "error: metrics/curves.csv: not what params.yaml gives: `dvc status` lists report;")
    assert not (study / "seed3.csv").exists()
    params["seeds"] = [2]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    params["train"]["lr"] = 0.02
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    refused = _study(tmp_path, "collect", "studies/x")
    assert refused.returncode == 1 and refused.stderr.startswith(
        "error: params.yaml: differs from studies/x/recipe.yaml in train.lr")
    # a seed already collected with other numbers is kept unless --replace
    params["train"]["lr"] = 0.01
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _produce(tmp_path, _curves([2], methods, rounds).replace("0.8\n", "0.7\n"))
    kept = _study(tmp_path, "collect", "studies/x")
    assert kept.returncode == 1 and "studies/x/seed2.csv: holds other numbers for seed 2" in kept.stderr
    # the tables come back from the files alone, and a seed missing a round is named
    (tmp_path / "metrics" / "curves.csv").unlink()
    before = (study / "paired.csv").read_text()
    assert _study(tmp_path, "assemble", "studies/x").returncode == 0 and (study / "paired.csv").read_text() == before
    lines = (study / "seed1.csv").read_text().splitlines()
    (study / "seed1.csv").write_text("\n".join(lines[:-1]) + "\n")
    broken = _study(tmp_path, "assemble", "studies/x")
    assert broken.returncode == 1 and f"seed 1 lacks {methods[-1]} {rounds[-1]}" in broken.stderr
    # setup writes params.yaml as the recipe with the seeds asked for
    assert _study(tmp_path, "setup", "studies/x", "--seeds", "3", "4").returncode == 0
    written = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert written["seeds"] == [3, 4] and written["dataset"]["path"] == "data/synthetic" and written["train"]["lr"] == 0.01
