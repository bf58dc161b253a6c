"""params.yaml into the library's configs (ModelConfig, TrainConfig), the checks only this machine can make
(the device, PAM's backward kernel), and the networks a stage starts from."""

from __future__ import annotations

from pathlib import Path

from stages._shared.errors import fail, unreadable
from stages._shared.files import load_state, read_json


def model_config(params: dict, num_classes: int, with_difficulty: bool, loss_module_hidden: int | None = None):
    from deal.models import ModelConfig

    m = params["model"]
    return ModelConfig(
        num_classes=num_classes,
        width_mult=m["width_mult"],
        head_channels=m["head_channels"],
        difficulty=with_difficulty,
        grid=tuple(params["deal"]["grid"]),
        detach=params["deal"]["mode"] == "decoupled",
        pretrained=m.get("pretrained"),
        loss_module_hidden=loss_module_hidden,
        pam_backward=params["deal"]["pam_backward"],
    )


# the train section's keys a TrainConfig field of the same name takes as is
TRAIN_KEYS = ("batch_size", "lr", "head_lr_mult", "momentum", "nesterov", "weight_decay", "poly_power", "val_every",
              "precision", "device", "num_workers", "sync_bn", "average", "average_start", "ema_decay")


def train_config(params: dict, mode: str, train_size: int, epochs: int | None = None, seed: int = 0,
                 class_weights: tuple[float, ...] | None = None):
    """The TrainConfig of a stage; `train.iterations` (if set) fixes the SGD steps per round. A training
    gives its `class_weights` (class_weights_of its labelled masks)."""
    from deal.config import epochs_for_steps
    from deal.training import TrainConfig

    t, d = params["train"], params["deal"]
    check_device(t["device"])
    if epochs is None:
        epochs = t["epochs"]
        if t.get("iterations"):
            epochs = epochs_for_steps(t["iterations"], train_size, t["batch_size"])
    return TrainConfig(
        epochs=epochs,
        **{key: t[key] for key in TRAIN_KEYS},
        seed=seed,
        mode=mode,
        lambda_dif=d["lambda"],
        difficulty_loss=d["loss"],
        void_as_correct=d["void_as_correct"],
        progress=True,
        class_weights=class_weights,
    )


def class_weights_of(params: dict, masks, info: dict) -> tuple[float, ...] | None:
    """train.class_weights of the labelled `masks` (None: unweighted), for the dataset `info` describes."""
    if params["train"].get("class_weights", "none") == "none":
        return None
    import torch

    from deal.losses import median_frequency_weights

    return median_frequency_weights(torch.as_tensor(masks), info["num_classes"], info["void_index"])


def train_augmentation(params: dict, info: dict):
    """The training images' augmentation (train.crop, scale, flip), void filled with the dataset's void index."""
    from deal.data.transforms import train_transforms

    t = params["train"]
    return train_transforms(tuple(t["crop"]), scale=tuple(t["scale"]), void_index=info["void_index"], hflip=t["flip"])


def check_device(name: str) -> None:
    """train.device names a device this machine has (the validator knows only the spelling)."""
    import torch

    if name.startswith("cuda"):
        index = int(name.split(":")[1]) if ":" in name else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            fail(f"params.yaml: train.device: {name!r}, but this machine has {torch.cuda.device_count()} CUDA device(s); "
                 "use auto (CUDA when present) or cpu")


def check_pam_backward(params: dict, num_classes: int) -> None:
    """deal.pam_backward symmetric stops here, before training, where its kernel cannot run."""
    from deal.models.pam_cpu import KernelUnavailable, check_backward
    from deal.runtime import resolve_device

    try:
        check_backward(params["deal"]["pam_backward"], resolve_device(params["train"]["device"]), num_classes)
    except KernelUnavailable as exc:
        fail(f"params.yaml: deal.pam_backward: symmetric, but {exc}; set it to auto (the kernel where it runs) or sdpa")


def pam_backward_record(params: dict, model) -> dict:
    """What train.json records of PAM's backward: the param and the backwards that ran."""
    ran = sorted(model.difficulty.attention.backward_ran) if getattr(model, "difficulty", None) is not None else []
    return {"param": params["deal"]["pam_backward"], "ran": ran}


def set_threads(params: dict) -> None:
    """The torch stages' process set-up: train.threads, and freed memory kept for the next batch."""
    from deal.runtime import retain_freed_memory

    retain_freed_memory()
    threads = params["train"].get("threads") or 0
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def load_model(params: dict, path: str | Path, num_classes: int):
    """The network saved at `path` (deal.models.load_model: the difficulty branch and the
    loss prediction module as the file holds them); a file that does not fit stops."""
    from deal.models import load_model as from_state

    try:
        return from_state(load_state(path), model_config(params, num_classes, with_difficulty=False))
    except ValueError as exc:
        fail(f"{path}: does not fit the network params.yaml describes ({str(exc)[:120]}); "
             f"rerun the stage that wrote it (dvc repro -f)")


def start_from_pretrained(model, folder: str | Path) -> str:
    """Load the pretrain stage's network (folder/model.pt) into `model` wherever a tensor's name and
    shape fit; returns the method, from folder/pretrain.json ("none": nothing loaded)."""
    from deal.pretrain import transfer

    record = read_json(Path(folder) / "pretrain.json")
    method = record.get("method") if isinstance(record, dict) else None
    if method is None:
        unreadable(Path(folder) / "pretrain.json", ValueError("no 'method'"))
    if method != "none":
        loaded = transfer(model, load_state(Path(folder) / "model.pt"))
        if not loaded:
            fail(f"{folder}/model.pt: no tensor fits this network (another model.width_mult or head_channels?); "
                 "rerun `dvc repro pretrain`")
    return method
