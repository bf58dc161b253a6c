"""stages/study.py: a study's per-seed files in, its recipe guarded, its tables from the files alone."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


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


def test_collect_keeps_each_seed_guards_the_recipe_and_assemble_reads_the_files(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    methods, rounds = params["methods"], [r["id"] for r in params["rounds"]]
    params["seeds"] = [0, 1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "curves.csv").write_text(_curves([0, 1], methods, rounds))
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
    (tmp_path / "metrics" / "curves.csv").write_text(_curves([2], methods, rounds))
    assert _study(tmp_path, "collect", "studies/x").returncode == 0
    assert {r["n"] for r in csv.DictReader((study / "summary.csv").open())} == {"3"}
    params["train"]["lr"] = 0.02
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    refused = _study(tmp_path, "collect", "studies/x")
    assert refused.returncode == 1 and refused.stderr.startswith(
        "error: params.yaml: differs from studies/x/recipe.yaml in train.lr")
    # a seed already collected with other numbers is kept unless --replace
    params["train"]["lr"] = 0.01
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "metrics" / "curves.csv").write_text(_curves([2], methods, rounds).replace("0.8\n", "0.7\n"))
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
