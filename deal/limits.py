"""How large a run is before it starts: its stages, the largest array a stage holds, the disk it writes.

`check` (called by deal.config.check_params) refuses params past the limits in
params.yaml's optional `limits` section (DEFAULTS when absent) with one line
naming what makes the run that large and the two ways out: lower it, or raise
the limit. The estimates are upper bounds of the right order, not
measurements: a run within them can still fail for other reasons, a run past
them is refused before it starts instead of failing hours in (a traceback on
an allocation, a full disk, DVC resolving thousands of stages).

Plain Python (no torch, no DVC): the check runs before anything is imported.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping

from deal.specs import integer, is_number

GB = 1e9
DEFAULTS = {"stages": 1000, "memory_gb": "auto", "disk_gb": "auto"}
# DVC re-reads the stage files and rewrites the stage's lock after every stage it runs, so its own cost per
# stage grows with the pipeline (docs/performance.md: 7.4 s a stage at 500 stages, 1.0 s at 97)
STAGES_WHY = ("DVC's own time per stage grows with the pipeline's size; run one seed per `dvc repro` "
              "(python tools/study.py run STUDY --seeds ...), or raise limits.stages")
_AUTO_OR_GB = ((lambda v: v == "auto" or (is_number(v) and v > 0)), "auto, or a number of GB > 0")
SCHEMA = {
    "stages": integer(1, why=" (the most stages one pipeline may hold)"),
    "memory_gb": _AUTO_OR_GB,
    "disk_gb": _AUTO_OR_GB,
}
# classes of the datasets whose count params alone do not say (a folder dataset's: from its dataset.yaml,
# known once prepared): the estimate takes the larger of the built-in datasets'
CLASSES = {"synthetic": 11, "camvid": 11, "cityscapes": 19}
FIGURE_BYTES = 400_000  # a PNG figure of a round (maps, levels, scatter, selection), generously


def settings(params: Mapping) -> dict:
    """The limits in force: params.yaml's `limits` over DEFAULTS."""
    given = params.get("limits")
    return {**DEFAULTS, **(given if isinstance(given, Mapping) else {})}


def stage_count(params: Mapping) -> int:
    """The stages dvc.yaml and rounds/*/dvc.yaml resolve to (tests/test_limits.py checks it against DVC's count)."""
    seeds, methods = len(params["seeds"]), len(params["methods"])
    baselines, deal_methods = len(params["baselines"] or []), len(params["deal_methods"] or [])
    rounds, steps, formats = len(params["rounds"]), len(params["steps"]), len(params["export"])
    per_seed = (1 + 2  # init, train_initial (segmentation and joint)
                + 2 * methods * rounds  # train, evaluate
                + 2 * methods * steps  # select, label
                + baselines * steps + 4 * deal_methods * steps  # score; errors, difficulty, score_deal, analyze
                + (baselines + deal_methods) * steps * formats)  # export, export_deal
    return 5 + seeds * per_seed  # generate, prepare, pretrain, reference, report


def network_parameters(model: Mapping, num_classes: int) -> int:
    """The network's parameter count, roughly (MobileNetV2 at width_mult, the ASPP head at head_channels; fitted
    to torchvision's counts at widths 0.35 to 2 and heads 32 to 512, within a factor of 1.7, from above)."""
    w, h = model["width_mult"], model["head_channels"]
    return int(1.9e6 * w * w + 48 * h * h + 5000 * h * w + h * num_classes)


def split_sizes(params: Mapping) -> dict | None:
    """Images per split, where params alone say it (the embedded scenes)."""
    data = params["dataset"]
    if data["kind"] != "synthetic":
        return None
    return {split: data["synthetic"][split] for split in ("train", "val", "test")}


def largest_array(params: Mapping, counts: Mapping | None, num_classes: int) -> tuple[float, str, str, str]:
    """(bytes, what it is, the param that sizes it, the fix) of the largest array one stage holds in memory."""
    h, w = params["dataset"]["resize"]
    batch = params["train"]["batch_size"]
    found = []
    if counts:
        split, n = max(counts.items(), key=lambda kv: kv[1])
        batch = min(batch, max(1, counts.get("train", batch)))
        synthetic = params["dataset"]["kind"] == "synthetic"
        found.append((4.0 * n * h * w, f"the prepared {split} split ({n:,} images of {h}x{w}, uint8 image and mask)",
                      "dataset.resize", "lower dataset.resize" + (f" or dataset.synthetic.{split}" if synthetic else "")))
    found.append((4.0 * batch * num_classes * h * w,
                   f"a batch's class scores ({batch:,} x {num_classes} classes x {h}x{w}, float32)",
                   "train.batch_size", "lower train.batch_size or dataset.resize"))
    pretrain = params.get("pretrain")
    if isinstance(pretrain, Mapping) and pretrain.get("method") == "scenes":  # generated in memory, at the images' size
        n = pretrain["scenes"]
        found.append((4.0 * n * h * w, f"the pretraining's generated scenes ({n:,} of {h}x{w}, image and mask)",
                      "pretrain.scenes", "lower pretrain.scenes or dataset.resize"))
    weights = network_parameters(params["model"], num_classes)
    found.append((3 * 4.0 * weights, f"the network's weights, gradients and momentum (about {weights:,} parameters)",
                  "model", "lower model.width_mult or model.head_channels"))
    return max(found, key=lambda item: item[0])


def disk_needed(params: Mapping, counts: Mapping | None, num_classes: int) -> float:
    """Bytes the run's outputs take, twice (the workspace and DVC's cache hold a copy each)."""
    data = params["dataset"]
    h, w = data["resize"]
    total = 0.0
    if data["kind"] == "synthetic":  # the generated scenes: PNG, at most the raw pixels
        gen = data["synthetic"]
        total += 4.0 * (gen["train"] + gen["val"] + gen["test"]) * gen["height"] * gen["width"]
    if counts:
        total += 4.0 * sum(counts.values()) * h * w  # the prepared arrays
        labeled = counts.get("train", 0)  # the error masks of a round: at most the train split, 1 byte a pixel
    else:
        labeled = 0
    seeds, methods, rounds, steps = (len(params[k]) for k in ("seeds", "methods", "rounds", "steps"))
    deal_methods = len(params["deal_methods"] or [])
    networks = seeds * (2 + methods * rounds + deal_methods * steps)  # round-0 models, every round's, difficulty.pt
    total += networks * 4.0 * network_parameters(params["model"], num_classes)
    total += seeds * deal_methods * steps * labeled * h * w
    total += seeds * (methods * steps + 4 * deal_methods * steps) * FIGURE_BYTES
    return 2 * total


def machine_memory() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return math.inf


def free_disk(root: str) -> float:
    try:
        return float(shutil.disk_usage(root).free)
    except OSError:
        return math.inf


def _gb(n: float) -> str:
    return f"{n / GB:,.1f} GB"


def check(params: Mapping, problems: list[str], counts: Mapping | None = None, num_classes: int | None = None,
          disk_root: str | None = None) -> None:
    """Append a line per limit the run would pass. Call it on params that passed every other check.
    `counts`: images per split (known after prepare; params give them for the embedded scenes);
    `num_classes`: the dataset's; `disk_root`: check the disk too, at the folder the outputs go to (a
    check before the run: once it is under way, its own outputs fill the disk it was checked against)."""
    given = params.get("limits")
    if given is not None and not isinstance(given, Mapping):
        problems.append(f"params.yaml: limits: {given!r}; a mapping of {', '.join(SCHEMA)} (or leave it out)")
        return
    for key in given or {}:
        if key not in SCHEMA:
            from deal.config import nearest

            problems.append(f"params.yaml: limits.{key}: unknown key; {nearest(key, SCHEMA)}")
    limits = settings(params)
    bad = False
    for key, (test, what) in SCHEMA.items():
        if not test(limits[key]):
            problems.append(f"params.yaml: limits.{key}: {limits[key]!r}; {what}")
            bad = True
    if bad:
        return
    counts = counts if counts is not None else split_sizes(params)
    classes = num_classes or CLASSES.get(params["dataset"]["kind"], max(CLASSES.values()))

    # the first limit passed, alone: its fix changes the others' estimates
    stages = stage_count(params)
    if stages > limits["stages"]:
        shape = (f"{len(params['seeds'])} seeds x {len(params['methods'])} methods x {len(params['rounds'])} rounds")
        problems.append(f"params.yaml: seeds, methods, rounds: {shape} make {stages:,} stages, more than "
                        f"limits.stages ({limits['stages']:,}); {STAGES_WHY}")
        return

    size, what, param, lower = largest_array(params, counts, classes)
    memory = machine_memory() if limits["memory_gb"] == "auto" else limits["memory_gb"] * GB
    if size > memory:
        whose = "this machine's memory" if limits["memory_gb"] == "auto" else "limits.memory_gb"
        problems.append(f"params.yaml: {param}: {what} would take {_gb(size)} of memory, "
                        f"more than {whose} ({_gb(memory)}); {lower}, or set limits.memory_gb (GB)")
        return

    if disk_root is not None:
        need = disk_needed(params, counts, classes)
        free = free_disk(disk_root) if limits["disk_gb"] == "auto" else limits["disk_gb"] * GB
        if need > free:
            whose = f"the free space at {os.path.abspath(disk_root)}" if limits["disk_gb"] == "auto" else "limits.disk_gb"
            problems.append(f"params.yaml: dataset, seeds, methods, rounds: the run would write about {_gb(need)} "
                            f"(data, networks, figures; twice: DVC's cache keeps a copy), more than {whose} "
                            f"({_gb(free)}); shrink the run, free space, or set limits.disk_gb (GB)")
