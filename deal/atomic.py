"""Atomic writes: every file or folder appears whole or not at all.

A writer writes into `.<name>.<pid>-<random>.tmp` beside the target and
renames it into place. The pid tells a killed writer's leftover from a live
writer's temporary, so `clear_stale` (beside one target) and `sweep_stale`
(under whole folders) remove only what nobody will finish.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"
TMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)-[^./]+\.tmp")


def temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}-"


def is_stale(name: str) -> bool:
    """A temporary of ours whose writer is gone (SIGKILL, power loss)."""
    match = TMP_NAME.fullmatch(name)
    if match is None:
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clear_stale(path: str | Path) -> None:
    """Remove what killed writers of `path` left beside it. (A name without a pid
    predates pids in the names: one writer per target then, so it is stale too.)"""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for stale in path.parent.iterdir():
        name = stale.name
        if name.startswith(f".{path.name}.") and name.endswith(TMP_SUFFIX) and (is_stale(name) or TMP_NAME.fullmatch(name) is None):
            _remove(stale)


def sweep_stale(tops: Iterable[str | Path]) -> list[Path]:
    """Remove every temporary a killed writer left under the folders `tops`; return them."""
    removed = []
    for top in tops:
        for folder, dirs, files in os.walk(top):
            for name in [*dirs, *files]:
                if name.startswith(".") and name.endswith(TMP_SUFFIX) and is_stale(name):
                    _remove(Path(folder) / name)
                    removed.append(Path(folder) / name)
            dirs[:] = [d for d in dirs if not (d.startswith(".") and d.endswith(TMP_SUFFIX))]
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary file path beside `path`; it replaces `path` on success.
    The file gets the mode a plain `open` would give it (mkstemp's is 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.exists(tmp):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary folder beside `path`; it replaces `path` (a folder or nothing) on success.
    The old folder is renamed aside before the new one moves in: no moment without one of them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=TMP_SUFFIX, dir=path.parent))
    old = None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=TMP_SUFFIX, dir=path.parent))
            os.replace(path, old / path.name)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old / path.name, path)
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
