"""Lock entries of stages that no longer exist: list them, or remove them (--prune).

A `dvc.lock` keeps an entry for every stage that ever ran from its `dvc.yaml`, also after the stage
was renamed or its matrix shrank (old names such as `evaluate@random-r0`): DVC never drops them, and
it re-reads and rewrites the whole lock after every stage, so they cost time on every run and mislead
whoever reads the lock. A stage is live when DVC resolves it from the current `dvc.yaml` files and
`params.yaml` (DVC's own index, as `dvc stage list --all`). The locks checked are those git tracks
and those beside a `dvc.yaml`.

    python tools/check_locks.py            # one line per stale entry; exit 1 when there is any
    python tools/check_locks.py --prune    # remove them; every live entry stays byte for byte

Pruning edits the lock's text: an entry is the block from its `  <name>:` line to the next one, so
what remains is the bytes DVC wrote, and `dvc status` answers as before; a lock left with no entry is
removed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ENTRY = re.compile(r"^  (?! )(\S.*?):\s*$")  # a key of the top-level `stages:` mapping, as DVC writes it


def live_stages(root: Path) -> dict[Path, set[str]]:
    """lock path (relative to root) -> the names of the stages DVC resolves from its dvc.yaml."""
    from dvc.repo import Repo

    live: dict[Path, set[str]] = {}
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            if stage.path_in_repo.endswith(("dvc.yaml", "dvc.yml")):
                lock = Path(stage.path_in_repo).with_name("dvc.lock")
                live.setdefault(lock, set()).add(stage.name)
    return live


def lock_files(root: Path, live: dict[Path, set[str]]) -> list[Path]:
    """Every lock git tracks (an orphan lock, with no dvc.yaml beside it, included) and every lock
    beside a dvc.yaml DVC reads."""
    done = subprocess.run(["git", "ls-files", "-z", "--", "dvc.lock", "*/dvc.lock"], cwd=root,
                          capture_output=True, text=True)
    tracked = {Path(p) for p in done.stdout.split("\0") if p} if done.returncode == 0 else set()
    return sorted(p for p in tracked | set(live) if (root / p).is_file())


def entries(text: str, lock: Path) -> list[tuple[str, int, int]]:
    """(stage name, first line, end line) of each entry, in file order; checked against a YAML parse."""
    lines = text.splitlines(keepends=True)
    starts = []
    in_stages = False
    for i, line in enumerate(lines):
        if not line.startswith(" "):
            in_stages = line.rstrip() == "stages:"
            continue
        match = ENTRY.match(line) if in_stages else None
        if match:
            starts.append((yaml.safe_load(match.group(1)), i))
    ends = []
    for n, (name, start) in enumerate(starts):
        end = starts[n + 1][1] if n + 1 < len(starts) else next(
            (i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].startswith(" ")),
            len(lines))
        ends.append((str(name), start, end))
    parsed = (yaml.safe_load(text) or {}).get("stages") or {}
    if [e[0] for e in ends] != [str(k) for k in parsed]:
        raise SystemExit(f"error: {lock}: not in the layout DVC writes (a `stages:` mapping of two-space "
                         f"indented names); restore it from git (git checkout {lock})")
    return ends


def stale_entries(root: Path) -> dict[Path, list[str]]:
    """lock -> the names of its entries whose stage DVC no longer resolves, in file order."""
    live = live_stages(root)
    stale = {}
    for lock in lock_files(root, live):
        names = [name for name, _, _ in entries((root / lock).read_text(), lock)]
        gone = [name for name in names if name not in live.get(lock, set())]
        if gone:
            stale[lock] = gone
    return stale


def prune(root: Path, lock: Path, names: list[str]) -> None:
    """Remove these entries from the lock's text (atomically); every other byte stays."""
    path = root / lock
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    drop = set()
    found = entries(text, lock)
    if all(name in names for name, _, _ in found):  # nothing live: an orphan lock, or its dvc.yaml's stages all renamed
        path.unlink()
        return
    for name, start, end in found:
        if name in names:
            drop.update(range(start, end))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(line for i, line in enumerate(lines) if i not in drop))
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=".", help="the repository (default: the current directory)")
    parser.add_argument("--prune", action="store_true", help="remove the stale entries")
    args = parser.parse_args()
    root = Path(args.root)
    stale = stale_entries(root)
    total = sum(map(len, stale.values()))
    for lock, names in stale.items():
        if args.prune:
            prune(root, lock, names)
            print(f"{lock}: removed {len(names)} entr{'y' if len(names) == 1 else 'ies'} of stages that no "
                  f"longer exist: {', '.join(names)}")
        else:
            for name in names:
                print(f"{lock}: {name}: no such stage in {lock.with_name('dvc.yaml')} with params.yaml")
    if total and not args.prune:
        print(f"check_locks: {total} lock entr{'y' if total == 1 else 'ies'} of stages that no longer exist; "
              f"remove them with `python tools/check_locks.py --prune`", file=sys.stderr)
        sys.exit(1)
    if not total:
        print("check_locks: every lock entry is a stage DVC resolves")


if __name__ == "__main__":
    main()
