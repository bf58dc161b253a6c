"""Every entry point answers --help with its usage and changes nothing (a stage's --help used to run it)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (REPO / "stages").glob("*.py") if p.name != "common.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_each_stage_script_answers_help_and_writes_nothing(script, tmp_path):
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "DEAL_STAGE_HOST_PRELOAD": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ") and script.name in done.stdout.splitlines()[0]
    assert list(tmp_path.iterdir()) == []
