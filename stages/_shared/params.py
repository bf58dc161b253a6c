"""params.yaml as the stages read it: parsed as DVC parses it, checked as every stage checks it."""

from __future__ import annotations

import os
from pathlib import Path

from deal.config import ParamsError, ParamsReadError, check_params, known_train_size, parse_params
from stages._shared.errors import fail
from stages._shared.files import sweep_stale
from stages._shared.prepared import Prepared


_read: dict = {}  # (path, mtime, size) -> parsed: a stage reads params.yaml and its stage file more than once


def read_params(path: str | Path = "params.yaml"):
    """The params file as DVC reads it (deal.config.parse_params), unchecked; a file DVC would not read stops."""
    import copy

    try:
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
        if key not in _read:
            _read[key] = parse_params(Path(path).read_text())
        return copy.deepcopy(_read[key])
    except OSError as exc:
        fail(f"{path}: cannot read params ({exc.strerror}); run from the repository root, or restore it (git checkout {path})")
    except ParamsReadError as exc:
        fail(f"{path}: {exc}")


def load_params(path: str | Path = "params.yaml", prepared: Prepared | None = None, disk: bool = False) -> dict:
    """params.yaml, validated; the budget checks run where the train split's size is known
    (the embedded generator's params, or the `prepared` data), and the limits with the prepared
    data's split sizes and classes where it exists. `disk`: also the disk the run will fill
    (the first stages of a run: generate, prepare)."""
    params = read_params(path)
    train_size = known_train_size(params) if isinstance(params, dict) else None
    counts = num_classes = None
    if prepared is not None and (counts := prepared.split_sizes()) is not None:
        train_size = train_size if train_size is not None else counts["train"]
        if (prepared.folder / "info.json").is_file():
            num_classes = prepared.info.get("num_classes")
    try:
        check_params(params, train_size=train_size, counts=counts, num_classes=num_classes, disk=disk)
    except ParamsError as exc:
        fail(exc.lines)
    sweep_stale()
    return params


def round_index(params: dict, round_id: str) -> int:
    ids = [r["id"] for r in params["rounds"]]
    if round_id not in ids:
        fail(f"params.yaml: rounds: no round {round_id!r}; the stage and params disagree, run `dvc repro` again")
    return ids.index(round_id)


def check_seed(params: dict, seed: int) -> int:
    """The stage's seed, which must be one of params.yaml's seeds (the stage files iterate over them)."""
    if seed not in params["seeds"]:
        fail(f"params.yaml: seeds: {params['seeds']} has no seed {seed}; the stage and params disagree, "
             "run `dvc repro` again (or add the seed)")
    return seed
