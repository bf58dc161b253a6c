"""tools/study.py run on a seed the study already holds: refused before its repro, rerun with --replace.

(Another machine rerunning a committed study's seed used to run the whole `dvc repro` only for collect
to refuse the other numbers afterwards, with no way to say "overwrite" to `run`.)
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import pytest
import yaml

from test_study import DVC, PIPELINE, REPO, _curves, _produce, _study

pytestmark = pytest.mark.slow  # dvc repro beside the stage host


@pytest.fixture
def study_with_seed0(tmp_path):
    """A stand-in pipeline (test_study's) whose study already holds seed 0 from a first collect."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["seeds"] = [0]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "metrics").mkdir()
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    methods, rounds = params["methods"], [r["id"] for r in params["rounds"]]
    _produce(tmp_path, _curves([0], methods, rounds))
    done = _study(tmp_path, "collect", "studies/x")
    assert done.returncode == 0, done.stderr
    # this machine's run will give other numbers for seed 0 (pixel accuracy 0.7, not 0.8)
    (tmp_path / "curves_src.csv").write_text(_curves([0], methods, rounds).replace(",0.8\n", ",0.7\n"))
    return tmp_path


def _pixel_accuracies(path) -> set[str]:
    return {row["pixel_accuracy"] for row in csv.DictReader(path.open())}


def test_run_refuses_a_seed_the_study_holds_before_its_repro_and_replace_reruns_it(study_with_seed0):
    root = study_with_seed0
    study = root / "studies" / "x"
    watched = lambda: {p.name: p.read_bytes() for p in [*study.iterdir(), root / "params.yaml", root / "dvc.lock"]}
    before = watched()
    done = _study(root, "run", "studies/x", "--seeds", "0", "1")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: studies/x: seed 0 already in the study; leave it out of --seeds, or pass --replace to rerun it "
        "here and overwrite the numbers"]
    assert "Running stage" not in done.stdout  # refused before the repro, not after it
    assert watched() == before
    assert _pixel_accuracies(study / "seed0.csv") == {"0.8"}
    # --replace: the seed runs here and its numbers replace the study's
    done = _study(root, "run", "studies/x", "--seeds", "0", "--replace")
    assert done.returncode == 0, done.stderr
    assert "Running stage 'report'" in done.stdout
    assert _pixel_accuracies(study / "seed0.csv") == {"0.7"}
    manifest = json.loads((study / "seeds.json").read_text())
    assert list(manifest) == ["0"] and isinstance(manifest["0"]["repro_s"], int)
