"""The pipeline's params: validation and the budget schedule.

Plain Python (no torch, no DVC): stages call `check_params` before they
read or write anything, so a bad params file stops every stage with one line
per problem naming the param and the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

DATASET_KINDS = ("synthetic", "camvid", "cityscapes", "folder")
DEAL_MODES = ("joint", "decoupled")
DIFFICULTY_LOSSES = ("weighted_bce", "bce")
BIN_SPANS = ("image", "fixed")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# acquisition methods the pipeline knows; deal_* need the difficulty branch
BASELINES = ("random", "entropy", "margin", "least_confidence", "qbc", "qbc_bald", "coreset", "vaal", "learning_loss")
DEAL_METHODS = ("deal_ds", "deal_de")


class ParamsError(Exception):
    """Bad params; `lines` holds one line per problem."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def budget_count(value, train_size: int, name: str, problems: list[str]) -> int:
    """An image count from an int or a percent string like "10%" of the train split."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        count = value
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            count = round(float(value.strip()[:-1]) * train_size / 100)
        except ValueError:
            count = -1
    else:
        count = -1
    if count <= 0:
        problems.append(f"params.yaml: {name}: {value!r} is not a positive image count or percent; write e.g. 40 or \"10%\"")
        return 0
    return count


def schedule(params: Mapping, train_size: int) -> list[int]:
    """Labeled images at each round: initial, initial + batch, ..."""
    problems: list[str] = []
    initial = budget_count(params["budget"]["initial"], train_size, "budget.initial", problems)
    batch = budget_count(params["budget"]["batch"], train_size, "budget.batch", problems)
    if problems:
        raise ParamsError(problems)
    return [initial + i * batch for i in range(len(params["rounds"]))]


def check_params(params: Mapping, train_size: int | None = None, root: str = ".") -> None:
    """Raise ParamsError listing every problem found in `params`.

    `train_size` (the train split's size, known after `prepare`) enables the
    budget checks; `root` resolves a relative data path.
    """
    problems: list[str] = []
    need = ("seed", "dataset", "budget", "methods", "baselines", "deal_methods", "rounds", "steps",
            "model", "train", "deal", "method_cfg", "method_train")
    missing = [k for k in need if k not in params]
    if missing:
        raise ParamsError([f"params.yaml: missing section {k!r}; copy it from the repository's params.yaml" for k in missing])

    data = params["dataset"]
    kind = data.get("kind")
    if kind not in DATASET_KINDS:
        problems.append(f"params.yaml: dataset.kind: unknown dataset {kind!r}; use one of {', '.join(DATASET_KINDS)}")
    elif kind != "synthetic":
        path = data.get("path")
        if not path:
            problems.append(f"params.yaml: dataset.path: {kind} needs the data's folder; set dataset.path (e.g. -S dataset.path=/data/{kind})")
        elif not os.path.isdir(os.path.join(root, path)):
            problems.append(f"params.yaml: dataset.path: {path!r} is not a folder; point it at the {kind} root")
    size = data.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s >= 32 for s in size)):
        problems.append(f"params.yaml: dataset.size: {size!r}; give [height, width], each an int >= 32")

    methods = list(params["methods"] or [])
    known = BASELINES + DEAL_METHODS
    for m in methods:
        if m not in known:
            problems.append(f"params.yaml: methods: unknown method {m!r}; use any of {', '.join(known)}")
    if len(set(methods)) != len(methods):
        problems.append("params.yaml: methods: a method is listed twice; list each once")
    expected_deal = [m for m in methods if m in DEAL_METHODS]
    expected_base = [m for m in methods if m in BASELINES]
    if list(params["deal_methods"] or []) != expected_deal:
        problems.append(f"params.yaml: deal_methods: must list the DEAL methods of `methods` in order: {expected_deal}")
    if list(params["baselines"] or []) != expected_base:
        problems.append(f"params.yaml: baselines: must list the other methods of `methods` in order: {expected_base}")
    for m in methods:
        if m in known and not isinstance(params["method_cfg"].get(m), Mapping):
            problems.append(f"params.yaml: method_cfg.{m}: missing; add its options (at least rho)")
            continue
        if m not in known:
            continue
        cfg = params["method_cfg"][m]
        rho = cfg.get("rho")
        if not (isinstance(rho, (int, float)) and 0 < rho <= 1):
            problems.append(f"params.yaml: method_cfg.{m}.rho: {rho!r}; the scored fraction of the unlabeled pool is in (0, 1]")
        train_options = params["method_train"].get(m)
        if not isinstance(train_options, Mapping):
            problems.append(f"params.yaml: method_train.{m}: missing; add `{m}: {{}}` (the shared recipe) or its options")
        elif m == "learning_loss":
            check_learning_loss(train_options, problems)
        if m == "deal_de":
            if not (isinstance(cfg.get("k"), int) and cfg["k"] >= 2):
                problems.append(f"params.yaml: method_cfg.deal_de.k: {cfg.get('k')!r}; the number of difficulty levels is an int >= 2")
            if cfg.get("span") not in BIN_SPANS:
                problems.append(f"params.yaml: method_cfg.deal_de.span: {cfg.get('span')!r}; use image (published) or fixed")

    rounds = params["rounds"] or []
    steps = params["steps"] or []
    ids = [r.get("id") if isinstance(r, Mapping) else None for r in rounds]
    if len(rounds) < 1 or None in ids:
        problems.append("params.yaml: rounds: a list of {id: r0}, {id: r1}, ...; every entry needs an id")
    elif ids[0] != "r0":
        problems.append(f"params.yaml: rounds[0].id: {ids[0]!r}; the first round is r0 (the shared initial model)")
    elif len(set(ids)) != len(ids):
        problems.append("params.yaml: rounds: round ids repeat; give each round a new id")
    elif len(steps) != len(rounds) - 1:
        problems.append(f"params.yaml: steps: {len(steps)} steps for {len(rounds)} rounds; there is one step between each two rounds (append {{cur, next}} with the rounds)")
    else:
        for i, step in enumerate(steps):
            want = {"cur": ids[i], "next": ids[i + 1]}
            if not isinstance(step, Mapping) or {k: step.get(k) for k in want} != want:
                problems.append(f"params.yaml: steps[{i}]: {step!r} does not chain the rounds; it must be {want}")

    deal = params["deal"]
    if deal.get("mode") not in DEAL_MODES:
        problems.append(f"params.yaml: deal.mode: {deal.get('mode')!r}; use joint (published) or decoupled")
    if deal.get("loss") not in DIFFICULTY_LOSSES:
        problems.append(f"params.yaml: deal.loss: {deal.get('loss')!r}; use weighted_bce (published) or bce")
    grid = deal.get("grid")
    if not (isinstance(grid, list) and len(grid) == 2 and all(isinstance(g, int) and g > 0 for g in grid)):
        problems.append(f"params.yaml: deal.grid: {grid!r}; give the attention grid as [h, w]")
    if params["train"].get("precision") not in PRECISIONS:
        problems.append(f"params.yaml: train.precision: {params['train'].get('precision')!r}; use one of {', '.join(PRECISIONS)}")

    if train_size is not None and not problems:
        counts = schedule(params, train_size) if rounds else []
        if counts and counts[-1] > train_size:
            problems.append(
                f"params.yaml: budget: {len(rounds)} rounds need {counts[-1]} labeled images but the train split has "
                f"{train_size}; lower budget.batch or drop rounds"
            )
        elif counts:
            batch = counts[1] - counts[0] if len(counts) > 1 else 0
            for m in methods:
                rho = params["method_cfg"][m]["rho"]
                for i, labeled in enumerate(counts[:-1]):
                    scored = math.ceil(rho * (train_size - labeled) - 1e-9)  # as pools.subsample
                    if batch > scored:
                        problems.append(
                            f"params.yaml: budget.batch: {batch} is larger than the {scored} images method {m} scores "
                            f"after {ids[i]} (rho {rho} of {train_size - labeled} unlabeled); lower the batch or raise method_cfg.{m}.rho"
                        )
                        break
    if problems:
        raise ParamsError(problems)


def check_learning_loss(options: Mapping, problems: list[str]) -> None:
    """method_train.learning_loss: hidden, lambda, margin, detach_after (Yoo and Kweon's values by default)."""
    name = "params.yaml: method_train.learning_loss"
    hidden = options.get("hidden")
    if not (isinstance(hidden, int) and not isinstance(hidden, bool) and hidden > 0):
        problems.append(f"{name}.hidden: {hidden!r}; the loss module's width is a positive int (paper: 128)")
    for key, low in (("lambda", 0.0), ("margin", 0.0)):
        value = options.get(key)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low):
            problems.append(f"{name}.{key}: {value!r}; a number >= 0 (paper: 1)")
    detach = options.get("detach_after", "missing")
    if detach is not None and not (isinstance(detach, (int, float)) and 0 <= detach <= 1):
        problems.append(f"{name}.detach_after: {detach!r}; the fraction of epochs before the features are detached, "
                        "in [0, 1] (paper: 0.6), or null for never")
