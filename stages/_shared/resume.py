"""Resuming an interrupted training: the key of a run (its configs, inputs, code, runtime) and its
last-epoch checkpoint in runs/.resume/."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from deal.atomic import clear_stale
from stages._shared import ROOT
from stages._shared.files import save_state


# Every path a stage reads or writes is named in dvc.yaml and passed on the command line;
# the one exception is not a DVC output: the last-epoch checkpoints of interrupted runs.
RESUME = Path("runs/.resume")


def code_digest() -> str:
    """The library's and the stage scripts' sources and torch's version: what a resumed run must share."""
    import torch

    h = hashlib.sha256(torch.__version__.encode())
    for pattern in ("deal/**/*.py", "deal/**/*.c", "stages/**/*.py"):
        for file in sorted(ROOT.glob(pattern)):
            h.update(file.relative_to(ROOT).as_posix().encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


def run_key(**parts) -> str:
    """A digest of everything that determines a training run: its configs (plain
    values and dataclasses), its input tensors (images, masks, weights) and the code."""
    import dataclasses

    import torch

    h = hashlib.sha256(code_digest().encode())
    for name in sorted(parts):
        value = parts[name]
        h.update(name.encode() + b"\0")
        if dataclasses.is_dataclass(value):
            value = dataclasses.asdict(value)
        tensors = value if isinstance(value, dict) and value and all(torch.is_tensor(v) for v in value.values()) else None
        if torch.is_tensor(value):
            tensors = {"": value}
        if tensors is not None:
            for key in sorted(tensors):
                t = tensors[key].detach().cpu().contiguous()
                h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(json.dumps(value, sort_keys=True, default=str).encode())
    return h.hexdigest()


def runtime(params: dict) -> dict:
    """What a run resolves at run time and a checkpoint must share: the device and
    precision `auto` picked here, the threads, torchvision's version."""
    import torch
    import torchvision
    from deal.runtime import resolve_device, resolve_precision

    device = resolve_device(params["train"]["device"])
    return {"device": str(device), "precision": str(resolve_precision(params["train"]["precision"], device)),
            "threads": params["train"]["threads"] or torch.get_num_threads(), "torchvision": torchvision.__version__}


class Resume:
    """The last-epoch checkpoint of one stage's run, in runs/.resume/<name>.pt.

    It resumes only the run it came from: it carries the run's key (run_key)
    and is ignored, with one line, when the key differs or the file does not
    load; `done` removes it once the stage's outputs are written.
    """

    def __init__(self, name: str, key: str, stage: str):
        self.path, self.key, self.stage = RESUME / f"{name}.pt", key, stage

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        import torch

        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            found = state.get("run_key") if isinstance(state, dict) else None
        except Exception as exc:  # truncated or foreign: start over rather than fail every rerun
            print(f"{self.stage}: ignoring {self.path}: unreadable ({type(exc).__name__}); starting from epoch 0")
            self.path.unlink(missing_ok=True)
            return None
        if found != self.key:
            print(f"{self.stage}: ignoring {self.path}: written by another run (its params, inputs or code differ); "
                  "starting from epoch 0")
            self.path.unlink(missing_ok=True)
            return None
        print(f"{self.stage}: resuming from epoch {state['epoch']} ({self.path})")
        return state

    def save(self, state: dict) -> None:
        save_state(self.path, {**state, "run_key": self.key})

    def done(self) -> None:
        self.path.unlink(missing_ok=True)
        clear_stale(self.path)
