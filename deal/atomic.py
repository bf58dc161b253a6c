"""Atomic writes: every file or folder appears whole or not at all.

A writer writes into `.<name>.<pid>-<random>.tmp` beside the target and
renames it into place. The pid tells a killed writer's leftover from a live
writer's temporary, so `clear_stale` (beside one target) and `sweep_stale`
(under whole folders) remove only what nobody will finish.

A write that fails (a full disk, a quota, the file size limit, a read-only or
unwritable folder) removes its temporary, leaves the target as it was and
raises `WriteError`, whose text is one line naming the target and the fix.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"
TMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)-[^./]+\.tmp")


# errors only a write gives: wherever they come from inside a writer's block, the write failed
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
FIXES = {
    errno.ENOSPC: "the disk is full: free space on it (df -h {folder}), then run it again",
    errno.EDQUOT: "over the disk quota: free space (or raise the quota) on {folder}, then run it again",
    errno.EFBIG: "over the file size limit (ulimit -f): raise it, then run it again",
    errno.EROFS: "{folder} is on a read-only file system: run where the outputs can be written",
    errno.EACCES: "no permission to write in {folder}: fix its permissions, then run it again",
    errno.EPERM: "no permission to write in {folder}: fix its permissions, then run it again",
}


class WriteError(OSError):
    """A write that failed; its temporary is removed and its target is as it was.
    str(): one line, `<target>: cannot write it (<reason>); <the fix>`."""

    def __init__(self, path: Path, cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))
        fix = FIXES.get(cause.errno, "fix that, then run it again").format(folder=path.parent)
        self.line = f"{path}: cannot write it ({cause.strerror or cause}); {fix}"

    def __str__(self) -> str:
        return self.line


def _failed_write(exc: BaseException, tmp: Path | None) -> bool:
    """Whether `exc`, raised inside a writer's block, is its write failing (not, say, an input
    it read being unreadable): an error only writes give, or one about the temporary itself."""
    if not isinstance(exc, OSError):
        return False
    if isinstance(exc, WriteError) or exc.errno in WRITE_ERRNOS:
        return True
    named = [Path(name) for name in (exc.filename, exc.filename2) if isinstance(name, (str, os.PathLike))]
    return tmp is not None and any(name == tmp or tmp in name.parents for name in named)


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
    The file gets the mode a plain `open` would give it (mkstemp's is 0600).
    WriteError when the write fails (nothing left behind, `path` as it was)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clear_stale(path)
        fd, name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    except OSError as exc:
        raise WriteError(path, exc) from exc
    try:
        with _write_errors(path, tmp):
            yield tmp
        try:
            if tmp.exists():
                os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except OSError as exc:
            raise WriteError(path, exc) from exc
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


@contextmanager
def _write_errors(path: Path, tmp: Path):
    """The block's own write failures into `tmp` (disk full, quota, size limit) become WriteError for
    `path`; any other error (an input the block reads) keeps its own."""
    try:
        yield
    except OSError as exc:
        if _failed_write(exc, tmp):
            raise WriteError(path, exc) from exc
        raise


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary folder beside `path`; it replaces `path` (a folder or nothing) on success.
    The old folder is renamed aside before the new one moves in: no moment without one of them.
    WriteError when the write fails (nothing left behind, `path` as it was)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clear_stale(path)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=TMP_SUFFIX, dir=path.parent))
    except OSError as exc:
        raise WriteError(path, exc) from exc
    old = None
    try:
        with _write_errors(path, tmp):
            yield tmp
        try:
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
        except OSError as exc:
            raise WriteError(path, exc) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
