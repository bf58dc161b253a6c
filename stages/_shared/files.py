"""The stages' reads and writes: every write atomic (a temporary, then a rename), every unreadable input one line."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from deal import atomic
from deal.config import OUTPUT_FOLDERS
from stages._shared.errors import fail, missing, unreadable


_writing = 0  # writers open: a failed write inside another writer's folder names that folder


@contextmanager
def _stage_write(writer):
    """A deal.atomic writer for a stage: a write that fails (disk full, quota, ...) stops the stage
    with its one line, naming the outermost target; the temporary is removed, the target as it was."""
    global _writing
    _writing += 1
    try:
        with writer as tmp:
            yield tmp
    except atomic.WriteError as exc:
        if _writing > 1:
            raise  # the writer around this one names its own target
        fail(str(exc))
    finally:
        _writing -= 1


def atomic_path(path: str | Path):
    return _stage_write(atomic.atomic_path(path))


def atomic_dir(path: str | Path):
    return _stage_write(atomic.atomic_dir(path))


def sweep_stale(root: str | Path = ".") -> list[Path]:
    """Remove every temporary a killed writer left under the output folders; return them.

    Run by each stage before it writes and by the stage host when DVC is done,
    so that a leftover of a stage whose rerun DVC served from its run-cache
    (no code of ours ran) goes too.
    """
    return atomic.sweep_stale(Path(root) / top for top in OUTPUT_FOLDERS)


def write_json(path: str | Path, payload) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        missing(path)
    except (OSError, ValueError) as exc:
        unreadable(path, exc)


def read_npy(path: str | Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        missing(path)
    except (OSError, ValueError, EOFError) as exc:
        unreadable(path, exc)


def read_scores(path: str | Path) -> list[tuple[str, float]]:
    """A score stage's scores.csv: (id, score) rows, highest first."""
    try:
        with open(path, newline="") as f:
            return [(row["id"], float(row["score"])) for row in csv.DictReader(f)]
    except FileNotFoundError:
        missing(path)
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as exc:
        unreadable(path, exc)


class _PythonWrites:
    """A file numpy writes to through Python's `write`: its own path for real files reports a
    short write (a full disk) without the error's errno, so it could not be told from others."""

    def __init__(self, file):
        self.write = file.write


def write_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(_PythonWrites(f), array)


def save_state(path: str | Path, state: dict) -> None:
    """torch.save through memory: saved to a file, the archive's folder is
    named after the (random) temporary file, so equal weights would hash apart."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_state(path: str | Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        missing(path)
    except Exception as exc:  # torch raises several kinds for a truncated or foreign file
        unreadable(path, exc)
    if not isinstance(state, dict):
        unreadable(path, TypeError(f"holds a {type(state).__name__}, not a state dict"))
    return state


def file_sha256(path: str | Path) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        missing(path)


def copy_file(src: str | Path, dst: str | Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def read_pool(path: str | Path, with_added: bool = False):
    """A pool file as a deal.data.pools.Pool; `with_added`: (pool, the ids its selection added)."""
    from deal.data.pools import Pool

    found = read_json(path)
    try:
        pool = Pool.from_dict(found)
        return (pool, found.get("added", [])) if with_added else pool
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        unreadable(path, exc)
