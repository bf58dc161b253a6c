"""The README's first commands, as a newcomer types them, on a fresh clone with a tiny params file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline_utils import BIN, REPO, copy_repo, edit_params, run, tiny_params

pytestmark = pytest.mark.slow

STAGE = "evaluate@0-deal_de-r1"
# Every command the test types, as the README writes it: a README that drops or respells one fails here.
DOCUMENTED = ["make repro", "source .venv/bin/activate", "dvc status", "dvc metrics show", "dvc plots show",
              "make stage NAME=", "python stages/target.py"]


def test_the_readme_documents_the_commands_this_test_runs():
    readme = (REPO / "README.md").read_text()
    missing = [cmd for cmd in DOCUMENTED if cmd not in readme]
    assert not missing, f"README.md no longer shows {missing}"


def test_quick_start_on_a_fresh_clone(tmp_path):
    source = copy_repo(tmp_path / "origin")
    edit_params(source, lambda p: tiny_params(p, methods=("random", "deal_de"), rounds=2))
    run(["git", "commit", "-qam", "tiny params"], source)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(source), str(clone)], tmp_path)
    # the venv this suite runs in stands in for the one `make` would build (5.5 GB): the clone's
    # install inputs are made older than its stamp, so `make` installs nothing
    venv = BIN.parent
    (clone / ".venv").symlink_to(venv)
    stamp = (venv / ".installed").stat().st_mtime if (venv / ".installed").exists() else None
    if stamp is None:
        pytest.skip(f"{venv} was not built by `make venv` (no .installed stamp)")
    for name in ("pyproject.toml", "requirements.lock"):
        os.utime(clone / name, (stamp - 60, stamp - 60))

    def shell(commands: str, check: bool = True):
        # as a user's shell: no PATH entry of ours, only what the documented activation adds
        env_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != BIN)
        return run(["bash", "-c", f"export PATH='{env_path}'; {commands}"], clone, check=check)

    done = shell("make repro")
    assert "Running stage 'report'" in done.stdout
    assert (clone / "metrics" / "curves.csv").is_file()
    # plain dvc after the documented activation: the stage commands' `python` is the venv's
    done = shell(f"source .venv/bin/activate && dvc status && dvc repro --force --single-item "
                 f"$(python stages/target.py {STAGE}) && dvc status")
    assert done.stdout.count("Data and pipelines are up to date.") == 2, done.stdout
    assert f"Running stage 'rounds/evaluate/dvc.yaml:{STAGE}'" in done.stdout
    done = shell("source .venv/bin/activate && dvc metrics show --json")
    shown = json.loads(done.stdout)
    files = {name for workspace in shown.values() for name in workspace["data"]}
    assert files == {"metrics/summary.json", "metrics/reference.json"}
    done = shell("source .venv/bin/activate && dvc plots show -o plots_out")
    html = (clone / "plots_out" / "index.html").read_text()
    for plot in ("curves_summary.csv", "curves.csv", "difficulty.csv", "training_loss", "training_val_miou",
                 "last_round"):
        assert plot in html, plot
    # the short make names work from the clone too
    done = shell(f"make stage NAME={STAGE}")
    assert "Data and pipelines are up to date." in done.stdout or "didn't change" in done.stdout, done.stdout
    done = shell(f"make status NAME={STAGE}")
    assert "up to date" in done.stdout
