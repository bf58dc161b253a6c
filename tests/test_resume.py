"""A checkpoint resumes only the run it came from, whatever param changed (#26): the train, difficulty
and reference stages key their checkpoints by every param their stage file declares.

For each stage: a training run beside the stage host (through the real DVC for train and difficulty)
is killed (kill -9 of the whole session) once its last-epoch checkpoint exists. Then, for every param
the stage declares, one changed value: the stage is run with that checkpoint in place; it must say it
ignores it and start from epoch 0, and (for every param of the train stage; for the augmentation
params of the other two) write the same bytes as the stage run again with no checkpoint at all. The
unchanged params resume it and end as a clean run does: the checkpoint is a good one. The stage
scripts run beside one stage host (tests/resume_driver.py), as `dvc repro` runs them, so that each
starts at once.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml

from pipeline_utils import BIN, REPO, kill_when, run, stage_argv, target

pytestmark = pytest.mark.slow

PY, DVC = str(BIN / "python"), str(BIN / "dvc")


def _longer(p):  # two epochs: a checkpoint exists after the first
    p["train"].update(iterations=None, epochs=2, threads=1)


def _decoupled(p):
    _longer(p)
    p["deal"].update(mode="decoupled", iterations=4)  # 8 labeled images, batch 4: two epochs


def _reference(p):
    _longer(p)
    p["reference"]["train"] = True


# kind: (stage, identity, base params, checkpoint, outputs compared)
STAGES = {
    "train": ("train@0-deal_de-r1", {"seed": 0, "method": "deal_de", "round": "r1"}, _longer,
              "runs/.resume/seed0-deal_de-r1.pt", ["runs/seed0/deal_de/r1/model.pt"]),
    "difficulty": ("difficulty@0-deal_de-s0", {"seed": 0, "method": "deal_de", "round": "r0", "next": "r1"}, _decoupled,
                   "runs/.resume/difficulty-seed0-deal_de-r0.pt", ["runs/seed0/deal_de/r0/difficulty.pt"]),
    "reference": ("reference", {}, _reference, "runs/.resume/reference.pt", ["metrics/reference.json"]),
}


def _pretrained(p):
    import torchvision

    weights = Path("weights") / "mobilenet_v2.pth"  # relative to the project (the driver's working folder)
    p["model"].update(pretrained=str(weights), width_mult=1.0)
    return {weights: torchvision.models.mobilenet_v2(width_mult=1.0).state_dict()}


def _set(section, **values):
    return lambda p: p[section].update(values)


def _toggle_mode(p):
    p["deal"]["mode"] = "decoupled" if p["deal"]["mode"] == "joint" else "joint"


def _more_methods(p):
    p["methods"] = ["random", "deal_ds", "deal_de"]
    p["deal_methods"] = ["deal_ds", "deal_de"]
    p["method_cfg"]["deal_ds"] = {"rho": 0.5}


# every param leaf a train, difficulty or reference stage declares -> a change that runs on this machine,
# or why it cannot (then the checkpoint's key is shown to differ)
CHANGES = {
    "model.width_mult": _set("model", width_mult=0.5), "model.head_channels": _set("model", head_channels=16),
    "model.pretrained": _pretrained,
    "train.epochs": _set("train", epochs=3), "train.iterations": _set("train", iterations=5),
    "train.batch_size": _set("train", batch_size=2), "train.lr": _set("train", lr=0.02),
    "train.head_lr_mult": _set("train", head_lr_mult=5), "train.momentum": _set("train", momentum=0.8),
    "train.nesterov": _set("train", nesterov=False), "train.weight_decay": _set("train", weight_decay=0.001),
    "train.poly_power": _set("train", poly_power=1.0), "train.val_every": _set("train", val_every=1),
    "train.crop": _set("train", crop=[24, 24]), "train.scale": _set("train", scale=[1.0, 1.0]),
    "train.flip": _set("train", flip=False), "train.average": _set("train", average="ema"),
    "train.average_start": _set("train", average_start=0.25), "train.ema_decay": _set("train", ema_decay=0.9),
    "train.class_weights": _set("train", class_weights="median_frequency"), "train.precision": _set("train", precision="fp32"),
    "train.device": _set("train", device="cpu"), "train.num_workers": _set("train", num_workers=1),
    "train.threads": _set("train", threads=2), "train.nproc": _set("train", nproc=2),
    "train.nnodes": "a second machine to meet (launch.rdzv_endpoint)",
    "train.sync_bn": "CUDA (SyncBatchNorm has no CPU kernel; the stages refuse it there)",
    "deal.mode": _toggle_mode, "deal.grid": _set("deal", grid=[4, 4]), "deal.loss": _set("deal", loss="bce"),
    "deal.lambda": _set("deal", **{"lambda": 0.5}), "deal.void_as_correct": _set("deal", void_as_correct=True),
    "deal.iterations": _set("deal", iterations=7), "deal.pam_backward": _set("deal", pam_backward="sdpa"),
    "deal_methods": _more_methods,
    "reference.train": _set("reference", train=False), "reference.seed": _set("reference", seed=1),
}


def _smaller(prepared: Path, dest: Path, counts: dict) -> Path:
    """The prepared arrays with the first `counts` images of each split: the reference trains on the
    whole train split, and what this test needs of it is its key, not its size."""
    import numpy as np

    dest.mkdir()
    ids = json.loads((prepared / "ids.json").read_text())
    for split, n in counts.items():
        for kind in ("images", "masks"):
            np.save(dest / f"{split}_{kind}.npy", np.load(prepared / f"{split}_{kind}.npy")[:n])
        ids[split] = ids[split][:n]
    (dest / "ids.json").write_text(json.dumps(ids))
    for name in ("info.json", "unmasked.json", "source.json"):
        (dest / name).write_bytes((prepared / name).read_bytes())
    return dest


def _declared(params: dict, kind: str, identity: dict) -> dict:
    """The values of the params stage `kind` declares in its stage file (read here, apart from the stages'
    own reading of it): dotted key -> value."""
    file = REPO / "rounds" / kind / "dvc.yaml"
    spec = yaml.safe_load((file if file.is_file() else REPO / "dvc.yaml").read_text())["stages"][kind]
    found = {}
    for key in spec["params"]:
        key = key.replace("${item.m}", identity.get("method", ""))
        node = params
        for name in key.split("."):
            node = node[name]
        found[key] = node
    return found


def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


@pytest.mark.parametrize("kind", sorted(STAGES))
def test_a_stale_checkpoint_never_resumes_a_run_with_any_other_param(changed_project, kind, tmp_path):
    root = changed_project[0]
    name, identity, base_change, checkpoint, outputs = STAGES[kind]
    base = yaml.safe_load((root / "params.yaml").read_text())
    base_change(base)
    (root / "params.yaml").write_text(yaml.safe_dump(base, sort_keys=False))

    # the stale checkpoint: DVC beside the stage host, killed with its stage once the checkpoint exists
    # (the reference's, of a smaller train split: the stage's command with DVC's environment)
    if kind == "reference":
        small = _smaller(root / "data" / "prepared", tmp_path / "prepared", {"train": 16, "val": 4, "test": 4})
        argv = stage_argv(root, name)
        argv[argv.index("--prepared") + 1] = str(small)
        command = [PY, "tools/host.py", "env", f"DVC_STAGE={name}", PY, *argv]
    else:
        command = [PY, "tools/host.py", DVC, "repro", "-f", "-s", target(name)]
    assert kill_when(command, root, (root / checkpoint).exists), f"{name} ended before it wrote a checkpoint"
    stale = tmp_path / "stale.pt"
    stale.write_bytes((root / checkpoint).read_bytes())

    declared = list(_leaves(_declared(base, kind, identity)))
    assert declared and not [leaf for leaf in declared if leaf not in CHANGES], "a param without a change to test"
    cases, impossible, written = {"unchanged": yaml.safe_dump(base, sort_keys=False)}, {}, []
    for leaf in declared:
        change = CHANGES[leaf]
        if isinstance(change, str):
            impossible[leaf] = change
            continue
        params = copy.deepcopy(base)
        files = change(params) or {}
        for path, state in files.items():
            torch.save(state, root / path)
            written.append(root / path)
        cases[leaf] = yaml.safe_dump(params, sort_keys=False)
    argv = stage_argv(root, name)
    if kind == "reference":  # the stale checkpoint is of this smaller split's run too
        argv[argv.index("--prepared") + 1] = str(small)
    # a run that ignored the checkpoint is a clean run: shown to the byte for every param of the train stage,
    # and for the augmentation params and the unchanged run of the other two (each run costs a training)
    clean = set(cases) if kind == "train" else {"unchanged", "train.flip", "train.scale", "train.crop"}
    spec = {"argv": argv, "outputs": outputs, "checkpoint": checkpoint, "stale": str(stale), "cases": cases,
            "clean": sorted(clean)}
    (tmp_path / "cases.json").write_text(json.dumps(spec))
    try:
        run([PY, "tools/host.py", PY, str(REPO / "tests" / "resume_driver.py"), str(tmp_path / "cases.json"),
             str(tmp_path / "results.json")], root)
    finally:
        for path in written:  # weights/ is a dependency of the other tests' stages
            path.unlink(missing_ok=True)
    results = json.loads((tmp_path / "results.json").read_text())

    assert results["unchanged"]["status"] == [0, 0] and results["unchanged"]["resumed"], results["unchanged"]
    assert results["unchanged"]["equal"], "a resumed run differs from a clean one"
    assert set(results) == {"unchanged", *declared} - set(impossible)
    refused = {}
    for leaf, r in results.items():
        if leaf == "unchanged":
            continue
        assert not r["resumed"] and r["status"][0] == r["status"][-1], (leaf, r)
        assert r["equal"] is (True if leaf in clean else None), (leaf, r)
        if r["status"][0]:  # a network of another shape: the stage refuses its input before any training
            assert all(len(lines) == 1 and lines[0].startswith("error: ") for lines in r["errors"]), (leaf, r)
            refused[leaf] = r["errors"][0][0]
        else:
            assert r["ignored"] or kind == "difficulty" and leaf == "deal.mode" or kind == "reference" \
                and leaf == "reference.train", (leaf, r)  # (those two no longer train: nothing to resume)
    # only a network of another shape is refused, and only by the stage that reads the round's network
    assert set(refused) <= ({"model.width_mult", "model.head_channels", "model.pretrained"} if kind == "difficulty"
                            else set()), refused
    # the params no machine here can run with: their change alone changes what the checkpoint is keyed by
    for leaf in impossible:
        section, _, key = leaf.partition(".")
        changed = copy.deepcopy(base)
        changed[section][key] = {"train.nnodes": 2, "train.sync_bn": True}[leaf]
        assert _declared(changed, kind, identity) != _declared(base, kind, identity)
