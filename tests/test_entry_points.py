"""Every entry point answers --help with its usage and changes nothing (a stage's --help used to run it)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the DVC stage scripts and the tools with options (tools/check_links.py takes none: the test of the docs runs it)
SCRIPTS = sorted(REPO.glob("stages/*.py")) + sorted(p for p in REPO.glob("tools/*.py") if p.name != "check_links.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=[f"{p.parent.name}/{p.name}" for p in SCRIPTS])
def test_each_stage_script_answers_help_and_writes_nothing(script, tmp_path):
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "DEAL_STAGE_HOST_PRELOAD": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ") and script.name in done.stdout.splitlines()[0]
    assert list(tmp_path.iterdir()) == []


def test_a_stage_script_leaves_no_folder_of_stages_on_the_import_path():
    """Run as the stage host runs it (its folder first on sys.path, then the script), a stage leaves the
    standard library importable: stages/ is no import path, or stages/select.py would be `select`."""
    probe = ("import runpy, sys\n"
             "sys.argv = ['stages/select.py', '--help']\n"
             "sys.path[0] = 'stages'\n"
             "try:\n    runpy.run_path('stages/select.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "import select, selectors\n"
             "print(callable(getattr(select, 'select', None)), 'stages' in sys.path)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "DEAL_STAGE_HOST_PRELOAD": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "True False"
