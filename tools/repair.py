"""What killed DVC processes leave behind that DVC would trip on, or git would keep.

- A `dvc.lock` cut short: DVC rewrites a lock in place after every stage, so a
  kill during that write leaves a truncated file, and every later `dvc` command
  stops on it ("'rounds/train/dvc.lock' is invalid", a dozen lines).
  `broken_locks` finds the locks DVC cannot read (DVC's own reader and schema);
  `restore_lock` puts back git's copy (HEAD), or removes a lock git has none of:
  DVC then reruns the stages it recorded, or restores them from its run-cache.
- A killed `dvc exp run` (in the workspace) leaves HEAD detached at the
  experiment's baseline, `.dvc/tmp/repro.dat` (its pickled arguments) staged in
  git's index, and its `refs/exps/exec/*` refs; the next `git commit` would land on
  the detached HEAD and carry the pickle. `recover_experiment` puts HEAD back on
  the branch it was detached from (same commit: files and index untouched),
  unstages and removes repro.dat and drops the refs, as DVC's own cleanup does.
  The experiment's params stay in the workspace, as after any interrupted run.

The stage host runs both before `dvc repro|exp` and after one that failed, with
one line per repair; `make check` reports a broken lock.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ARGS_FILE = ".dvc/tmp/repro.dat"  # dvc.repo.experiments.executor.base.BaseExecutor.PACKED_ARGS_FILE
EXEC_REFS = ("refs/exps/exec/EXEC_BASELINE", "refs/exps/exec/EXEC_MERGE", "refs/exps/exec/EXEC_BRANCH")


def lock_files(root: str | Path = ".") -> list[Path]:
    """The pipeline's locks: dvc.lock and rounds/<kind>/dvc.lock."""
    root = Path(root)
    return [p for p in [root / "dvc.lock", *sorted((root / "rounds").glob("*/dvc.lock"))] if p.is_file()]


def lock_problem(path: Path) -> str | None:
    """Why DVC cannot read the lock at `path` (its own YAML reader and lock schema), or None."""
    from dvc.schema import COMPILED_LOCKFILE_SCHEMA
    from dvc.utils.strictyaml import load

    try:
        load(str(path), COMPILED_LOCKFILE_SCHEMA)
    except Exception as exc:  # DVC's YAMLSyntaxError, YAMLValidationError, EncodingError
        return "not YAML DVC can read" if "Syntax" in type(exc).__name__ or "Encoding" in type(exc).__name__ \
            else "not a lock DVC can read (entries cut short or missing)"
    return None


def broken_locks(root: str | Path = ".") -> list[tuple[Path, str]]:
    """(lock, why) for every lock under `root` that DVC cannot read."""
    return [(path, why) for path in lock_files(root) if (why := lock_problem(path)) is not None]


def _git(root: Path, *args: str, text: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=text)


def restore_lock(path: Path, root: str | Path = ".") -> str:
    """Put git's copy of the broken lock `path` back (or remove it when git has none); what was done, in words."""
    from deal.atomic import write_text

    root = Path(root)
    rel = os.path.relpath(path, root)
    done = _git(root, "show", f"HEAD:./{Path(rel).as_posix()}")
    if done.returncode == 0:
        write_text(path, done.stdout)
        if lock_problem(path) is None:
            return "restored from git (HEAD): the stages it records since then rerun, or come from the run-cache"
    path.unlink(missing_ok=True)
    return "removed (git has no readable copy): its stages rerun, or come from the run-cache"


def dvc_busy(root: Path) -> bool:
    """A DVC process holds this repository's lock (.dvc/tmp/lock, zc.lockfile as DVC takes it)."""
    import zc.lockfile

    path = root / ".dvc" / "tmp" / "lock"
    if not path.parent.is_dir():
        return False
    try:
        zc.lockfile.LockFile(str(path)).close()
    except zc.lockfile.LockError:
        return True
    return False


def recover_experiment(root: str | Path = ".") -> list[str]:
    """Undo what a killed `dvc exp run` left in git (see the module's doc); what was done, in words."""
    root = Path(root)
    refs = [ref for ref in EXEC_REFS if _git(root, "rev-parse", "--verify", "-q", ref).returncode == 0]
    staged = bool(_git(root, "diff", "--cached", "--name-only", "--", ARGS_FILE).stdout.strip())
    # DVC removes repro.dat once the run has read it, and a queued run's goes into its stash commit: one in
    # the workspace with no DVC at work is a killed run's
    left = staged or (root / ARGS_FILE).exists()
    if not (refs or left) or dvc_busy(root):
        return []
    done = []
    if _git(root, "symbolic-ref", "-q", "HEAD").returncode != 0:
        # DVC detached HEAD (git reflog: "checkout: moving from BRANCH to SHA"); the most recent move only
        head = _git(root, "rev-parse", "HEAD").stdout.strip()
        last = _git(root, "reflog", "-n", "1", "--format=%gs", "HEAD").stdout.strip()
        found = re.fullmatch(r"checkout: moving from (\S+) to (\S+)", last)
        if found and head.startswith(found[2]):
            branch = found[1]
            tip = _git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}").stdout.strip()
            if tip == head:
                _git(root, "symbolic-ref", "-m", "tools/repair.py: back from a killed dvc exp run", "HEAD",
                     f"refs/heads/{branch}")
                done.append(f"HEAD back on {branch} (left detached)")
    if left:
        _git(root, "rm", "--cached", "-q", "--ignore-unmatch", "--", ARGS_FILE)
        (root / ARGS_FILE).unlink(missing_ok=True)
        done.append(f"{ARGS_FILE} {'unstaged and ' if staged else ''}removed")
    for ref in refs:
        _git(root, "update-ref", "-d", ref)
    if refs:
        done.append("its refs/exps/exec refs dropped")
    return done


def main() -> int:
    """By hand, after a plain `dvc` (no stage host) was killed: the same repairs the host makes."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="repair.py", description="Repair what a killed DVC left in this project: a dvc.lock cut short "
        "(git's copy put back) and a killed `dvc exp run` (HEAD back on its branch, repro.dat and the exec "
        "refs removed). The stage host (tools/host.py) does this itself before and after each run.")
    parser.add_argument("--check", action="store_true", help="say what needs repair, change nothing (exit 1 if any)")
    args = parser.parse_args()
    root = Path.cwd()
    found = broken_locks(root)
    for path, why in found:
        action = "needs repair" if args.check else restore_lock(path, root)
        print(f"{os.path.relpath(path)}: {why}; {action}")
    if args.check:
        killed = (root / ARGS_FILE).exists() or any(
            _git(root, "rev-parse", "--verify", "-q", ref).returncode == 0 for ref in EXEC_REFS)
        if killed and not dvc_busy(root):
            print("a killed `dvc exp run` left git mid-run; needs repair")
        return 1 if found or (killed and not dvc_busy(root)) else 0
    for line in recover_experiment(root):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
