"""What every stage script shares: params, paths, atomic writes, loading.

Only the standard library, numpy and yaml at import time: stages that need
no torch (init, select, report) stay fast. Torch is imported inside the
functions that need it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deal.config import ParamsError, check_params, schedule  # noqa: E402

PREPARED = Path("data/prepared")
POOLS = Path("data/pools")
RUNS = Path("runs")
METRICS = Path("metrics")
RESUME = Path("runs/.resume")  # last-epoch checkpoints of interrupted stages; not a DVC out


def fail(lines) -> None:
    """Stop the stage: one line per problem, exit status 1, nothing written."""
    for line in [lines] if isinstance(lines, str) else lines:
        print(f"error: {line}", file=sys.stderr)
    sys.exit(1)


def load_params(path: str | Path = "params.yaml", with_train_size: bool = True) -> dict:
    """params.yaml, validated; the budget checks run once the data is prepared."""
    try:
        params = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        fail(f"{path}: cannot read params ({exc}); restore it from git")
    train_size = None
    if with_train_size and (PREPARED / "ids.json").is_file():
        train_size = len(read_json(PREPARED / "ids.json")["train"])
    try:
        check_params(params, train_size=train_size)
    except ParamsError as exc:
        fail(exc.lines)
    return params


# ---------------------------------------------------------------- atomic writes


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary folder beside `path`; it replaces `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(path: str | Path, payload) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def write_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


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

    return torch.load(path, map_location="cpu", weights_only=True)


def copy_file(src: str | Path, dst: str | Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


# ---------------------------------------------------------------- the prepared data


def dataset_info() -> dict:
    return read_json(PREPARED / "info.json")


def split_ids(split: str) -> list[str]:
    return read_json(PREPARED / "ids.json")[split]


def load_split(split: str, ids: list[str] | None = None):
    """uint8 tensors (images N x 3 x H x W, masks N x H x W) of `split`, in `ids` order."""
    import torch

    images = np.load(PREPARED / f"{split}_images.npy", mmap_mode="r")
    masks = np.load(PREPARED / f"{split}_masks.npy", mmap_mode="r")
    if ids is not None:
        position = {sid: i for i, sid in enumerate(split_ids(split))}
        missing = [sid for sid in ids if sid not in position]
        if missing:
            fail(f"{PREPARED / 'ids.json'}: {missing[0]} is not in the {split} split; rerun `dvc repro prepare`")
        order = np.array([position[sid] for sid in ids], dtype=np.int64)
        images, masks = images[order], masks[order]
    # np.array copies out of the read-only memory map
    return torch.from_numpy(np.array(images)), torch.from_numpy(np.array(masks))


def read_pool(path: str | Path):
    from deal.data.pools import Pool

    return Pool.from_dict(read_json(path))


def round_index(params: dict, round_id: str) -> int:
    ids = [r["id"] for r in params["rounds"]]
    if round_id not in ids:
        fail(f"params.yaml: rounds: no round {round_id!r}; the stage and params disagree, run `dvc repro` again")
    return ids.index(round_id)


def stage_args(doc: str, with_next: bool = False) -> argparse.Namespace:
    """--method and --round (and --next: the round whose pool a step writes) of a per-round stage."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--method", required=True)
    parser.add_argument("--round", required=True)
    if with_next:
        parser.add_argument("--next", required=True, help="the round whose pool this step writes or reads")
    return parser.parse_args()


def load_model(params: dict, path: str | Path):
    """The network saved at `path`, with the difficulty branch and the loss
    prediction module (learning loss) when the file holds them."""
    from deal.models import build_model

    state = load_state(path)
    hidden = state["loss_module.levels.0.weight"].shape[0] if "loss_module.levels.0.weight" in state else None
    model = build_model(model_config(params, with_difficulty=any(k.startswith("difficulty.") for k in state),
                                     loss_module_hidden=hidden))
    model.load_state_dict(state)
    return model


# ---------------------------------------------------------------- configs


def model_config(params: dict, with_difficulty: bool, loss_module_hidden: int | None = None):
    from deal.models import ModelConfig

    m = params["model"]
    return ModelConfig(
        num_classes=dataset_info()["num_classes"],
        width_mult=m["width_mult"],
        head_channels=m["head_channels"],
        difficulty=with_difficulty,
        grid=tuple(params["deal"]["grid"]),
        detach=params["deal"]["mode"] == "decoupled",
        pretrained=m.get("pretrained"),
        loss_module_hidden=loss_module_hidden,
    )


def train_config(params: dict, mode: str, train_size: int, epochs: int | None = None, seed_offset: int = 0):
    """The TrainConfig of a stage; `train.iterations` (if set) fixes the SGD steps per round."""
    from deal.training import TrainConfig

    t, d = params["train"], params["deal"]
    if epochs is None:
        epochs = t["epochs"]
        if t.get("iterations"):
            per_epoch = max(1, train_size // t["batch_size"])
            epochs = max(1, -(-t["iterations"] // per_epoch))
    return TrainConfig(
        epochs=epochs,
        batch_size=t["batch_size"],
        lr=t["lr"],
        head_lr_mult=t["head_lr_mult"],
        momentum=t["momentum"],
        weight_decay=t["weight_decay"],
        poly_power=t["poly_power"],
        val_every=t["val_every"],
        seed=params["seed"] + seed_offset,
        mode=mode,
        lambda_dif=d["lambda"],
        difficulty_loss=d["loss"],
        void_as_correct=d["void_as_correct"],
        precision=t["precision"],
        device=t["device"],
        num_workers=t["num_workers"],
        progress=True,
    )


def set_threads(params: dict) -> None:
    threads = params["train"].get("threads") or 0
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


__all__ = [
    "ParamsError",
    "schedule",
]
