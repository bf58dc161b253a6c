"""tools/check_locks.py: no committed lock holds an entry of a stage that no longer exists, and pruning
removes exactly those entries, leaving every live one as DVC wrote it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "check_locks.py"
DVC = str(Path(sys.executable).parent / "dvc")


def _tool(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--root", str(root), *args], capture_output=True, text=True)


def test_the_committed_locks_hold_no_entry_of_a_stage_that_no_longer_exists():
    done = _tool(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "check_locks: every lock entry is a stage DVC resolves\n"


def _run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_prune_removes_the_stale_entries_and_keeps_every_live_one_byte_for_byte(tmp_path):
    # a pipeline of matrix stages in two dvc.yaml files, run once for three items
    _run(["git", "init", "-q"], tmp_path)
    _run([DVC, "init", "-q"], tmp_path)
    (tmp_path / "params.yaml").write_text("items: [a, b, c]\n")
    stage = {"matrix": {"x": "${items}"}, "cmd": "echo ${item.x} > out/${item.x}.txt",
             "outs": [{"out/${item.x}.txt": {"cache": False}}]}
    (tmp_path / "out").mkdir()
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"make": stage}}))
    sub = tmp_path / "kind"
    sub.mkdir()
    (sub / "dvc.yaml").write_text(yaml.safe_dump({"vars": ["../params.yaml"], "stages": {"copy": {
        "matrix": {"x": "${items}"}, "wdir": "..", "cmd": "cp out/${item.x}.txt out/${item.x}.copy",
        "deps": ["out/${item.x}.txt"], "outs": [{"out/${item.x}.copy": {"cache": False}}]}}}))
    _run([DVC, "repro", "-q", "--all-pipelines"], tmp_path)
    # an orphan lock: its dvc.yaml was removed, every entry is stale
    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / "dvc.lock").write_text((sub / "dvc.lock").read_text())
    _run(["git", "add", "-A"], tmp_path)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"], tmp_path)
    lock, sub_lock = (tmp_path / "dvc.lock").read_text(), (sub / "dvc.lock").read_text()
    # the matrix shrinks: c's entries are left behind in both locks
    (tmp_path / "params.yaml").write_text("items: [a, b]\n")
    status = _run([DVC, "status"], tmp_path)
    assert status == "Data and pipelines are up to date.\n"

    done = _tool(tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "dvc.lock: make@c: no such stage in dvc.yaml with params.yaml",
        "gone/dvc.lock: copy@a: no such stage in gone/dvc.yaml with params.yaml",
        "gone/dvc.lock: copy@b: no such stage in gone/dvc.yaml with params.yaml",
        "gone/dvc.lock: copy@c: no such stage in gone/dvc.yaml with params.yaml",
        "kind/dvc.lock: copy@c: no such stage in kind/dvc.yaml with params.yaml"]
    assert "5 lock entries of stages that no longer exist" in done.stderr

    done = _tool(tmp_path, "--prune")
    assert done.returncode == 0, done.stderr
    assert _tool(tmp_path).returncode == 0
    # the remaining text is the old one without c's entry (the last): every live entry as DVC wrote it
    for path, old, kind in ((tmp_path / "dvc.lock", lock, "make"), (sub / "dvc.lock", sub_lock, "copy")):
        assert list(yaml.safe_load(old)["stages"])[-1] == f"{kind}@c"
        assert path.read_text() == old[:old.index(f"\n  {kind}@c:\n") + 1]
        assert list(yaml.safe_load(path.read_text())["stages"]) == [f"{kind}@a", f"{kind}@b"]
    assert not (gone / "dvc.lock").exists()  # nothing live was left in it
    assert _run([DVC, "status"], tmp_path) == status
