"""The README's quick start, as a newcomer types it, on a fresh clone with a tiny params file.

The commands are read from the README's "Quick start" code blocks and run as written (the clone URL
aside, and `make test`, which is this suite); a command added there that this test does not know
fails it, so the README cannot show a command nobody ran.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pipeline_utils import BIN, REPO, copy_repo, edit_params, run, tiny_params

pytestmark = pytest.mark.slow

STAGE = "train@0-deal_de-r1"


def quick_start_blocks() -> list[list[str]]:
    """The commands of each code block of the README's "Quick start" section, comments stripped."""
    text = (REPO / "README.md").read_text()
    section = re.search(r"^## Quick start\n(.*?)^## ", text, re.S | re.M)
    assert section, "README.md has no '## Quick start' section"
    blocks = re.findall(r"^```\n(.*?)^```", section.group(1), re.S | re.M)
    return [[line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()] for block in blocks]


def test_the_quick_start_shows_the_commands_this_test_runs():
    assert quick_start_blocks() == [
        ["git clone <url of this repository> deal && cd deal", "make repro", "make test"],
        ["make check", "make status", "make metrics", f"make stage NAME={STAGE}", f"python tools/target.py {STAGE}",
         "dvc dag --mermaid report"]]
    readme = (REPO / "README.md").read_text()
    for opened in ("metrics/report.md", "metrics/curves.png", "make plots", "dvc_plots/index.html",
                   "source .venv/bin/activate"):
        assert opened in readme, opened


def test_quick_start_on_a_fresh_clone(tmp_path):
    source = copy_repo(tmp_path / "origin")
    edit_params(source, lambda p: tiny_params(p, methods=("random", "deal_de"), rounds=2))
    run(["git", "commit", "-qam", "tiny params"], source)
    clone = tmp_path / "deal"
    # the README's `git clone <url> deal && cd deal`, from the local source
    run(["git", "clone", "-q", str(source), "deal"], tmp_path)
    # the venv this suite runs in stands in for the one `make` would build (6 GB): the clone's
    # install inputs are made older than its stamp, so `make` installs nothing
    venv = BIN.parent
    (clone / ".venv").symlink_to(venv)
    stamp = (venv / ".installed").stat().st_mtime if (venv / ".installed").exists() else None
    if stamp is None:
        pytest.skip(f"{venv} was not built by `make venv` (no .installed stamp)")
    for name in ("pyproject.toml", "requirements.lock"):
        os.utime(clone / name, (stamp - 60, stamp - 60))

    def shell(commands: str, activate: bool = False):
        # as a user's shell: no PATH entry of ours, only what the documented activation adds
        env_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != BIN)
        prefix = "source .venv/bin/activate && " if activate else ""
        # and not inside our `make test`: a sub-make would add its "Entering/Leaving directory" lines
        fresh = "unset MAKELEVEL MAKEFLAGS MFLAGS MAKEOVERRIDES; "
        return run(["bash", "-c", f"export PATH='{env_path}'; {fresh}{prefix}{commands}"], clone)

    _, block = quick_start_blocks()
    done = shell("make repro")
    assert "Running stage 'report'" in done.stdout
    # the files the README says to open
    for name in ("report.md", "curves.png", "curves.csv", "summary.json"):
        assert (clone / "metrics" / name).is_file(), name
    assert (clone / "metrics" / "report.md").read_text().startswith("# report: synthetic, seed 0\n")
    done = shell("make plots")
    html = (clone / "dvc_plots" / "index.html").read_text()
    for plot in ("curves_summary.csv", "curves.csv", "difficulty.csv", "training_loss", "training_val_miou",
                 "last_round"):
        assert plot in html, plot

    # the second block, each command as the README writes it
    outputs = {command: shell(command, activate=True).stdout for command in block}
    assert outputs["make check"].splitlines()[-1] == "params.yaml: valid"
    assert outputs["make status"].splitlines()[-1] == "Data and pipelines are up to date."
    assert "metrics/summary.json" in outputs["make metrics"] and "deal_de.auroc" in outputs["make metrics"]
    assert outputs[f"make stage NAME={STAGE}"].splitlines()[-1] == "Data and pipelines are up to date."
    assert outputs[f"python tools/target.py {STAGE}"] == f"rounds/train/dvc.yaml:{STAGE}\n"
    dag = outputs["dvc dag --mermaid report"]
    assert dag.startswith("flowchart TD\n") and '["report"]' in dag and '["prepare"]' in dag

    # plain dvc after the documented activation: the stage commands' `python` is the venv's
    target = f"rounds/evaluate/dvc.yaml:evaluate@0-deal_de-r1"
    done = shell(f"dvc repro --force --single-item {target} && dvc status", activate=True)
    assert f"Running stage '{target}'" in done.stdout
    assert done.stdout.splitlines()[-1] == "Data and pipelines are up to date."
    done = shell("dvc metrics show --json", activate=True)
    files = {name for workspace in json.loads(done.stdout).values() for name in workspace["data"]}
    assert files == {"metrics/summary.json", "metrics/reference.json"}
