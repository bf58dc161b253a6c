"""Judge a recipe: does its curve measure the labels, or SGD steps and training noise?

    python bench/label_value.py --steps 120 480 1920 [--train-seeds 3] [--factor 3] \
        [--set train.average=ema ...] [--name default] [--json J] [--figure F]

Run in a workspace whose params.yaml is the recipe and where `dvc repro prepare
pretrain` has run (it reads params.yaml, data/prepared and runs/pretrain;
`--set key=value` overrides a param for this run only, as `dvc exp run -S`
would; a pretrain param set so is not rerun here: `dvc repro pretrain` first). It trains a plain
segmentation network exactly as a round of the train stage trains it (the
recipe's augmentation, schedule, weight averaging and encoder initialisation)
on two pools of the train split, at each step count and with each training
seed, and scores the test split:

- small: the initial pool of an active-learning seed (`--pool-seeds`, budget.initial
  images, drawn as `init` draws it);
- large: `--factor` times as many images, the small pool plus random others.

With several pool seeds each pair of pools is trained with every training seed, so
the label gap's interval also covers which images the pools happen to hold (on
CamVid, frames of three video sequences, that varies more than training does);
the training noise is then the std over training seeds within a pool, pooled.

It prints, per step count, each pool's mean mIoU over the training seeds with
its std and 95 % Student-t interval, and the label gap (large - small, paired
by training seed, with its interval); then three figures of merit:

- training noise: the std of mIoU over training seeds on one fixed pool
  (the larger of the two pools' std at the plateau step);
- steps to plateau: the first step count from which the small pool gains less
  than `--plateau-gain` points (mean, paired by training seed) at the next
  step count (the recipe's step budget belongs there or beyond);
- label gap at the plateau: large - small at that step count.

An active-learning curve can separate methods only where the label gap is well
above the training noise at the recipe's own steps. `--figure` draws mIoU
against steps for both pools with their bands.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import machine, write_json  # noqa: E402
from stages._shared.configs import (  # noqa: E402
    class_weights_of, model_config, set_threads, start_from_pretrained, train_augmentation, train_config,
)
from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import read_json  # noqa: E402
from stages._shared.params import load_params  # noqa: E402
from stages._shared.prepared import Prepared  # noqa: E402


def parse_set(assignments: list[str], params: dict) -> dict:
    """`params` with each dotted key=value (YAML value) applied; a key that does not exist stops."""
    import yaml

    params = copy.deepcopy(params)
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep:
            fail(f"--set {assignment}: not KEY=VALUE (e.g. --set train.average=ema)")
        node, names = params, key.split(".")
        for name in names[:-1]:
            if not isinstance(node, dict) or name not in node:
                fail(f"--set {assignment}: params.yaml has no section {name!r}")
            node = node[name]
        if not isinstance(node, dict) or names[-1] not in node:
            fail(f"--set {assignment}: params.yaml has no key {key!r}")
        node[names[-1]] = yaml.safe_load(value)
    return params


def draw_pools(train_ids: list[str], small: int, large: int, seed: int) -> dict[str, list[str]]:
    """The small pool as `init` draws the initial pool of `seed`, and the large one: it plus the next
    images of an independent seeded permutation (the small pool is a subset of the large one)."""
    import numpy as np
    from deal.data.pools import initial_pool

    first = initial_pool(train_ids, small, seed=seed).labeled
    chosen = set(first)
    rest = [train_ids[i] for i in np.random.default_rng([seed, 1]).permutation(len(train_ids))
            if train_ids[i] not in chosen]
    return {"small": first, "large": first + rest[: large - small]}


def train_one(data: Prepared, params: dict, ids: list[str], steps: int, seed: int, test_set, pretrained: Path) -> dict:
    """One training of the train stage's kind (plain network, the recipe's shared settings) on `ids`
    for `steps` SGD steps with training seed `seed`; its test scores and time."""
    from deal.data.memory import InMemorySegmentation
    from deal.models import build_model
    from deal.training import evaluate, train

    info = data.info
    t = params["train"]
    run = copy.deepcopy(params)
    run["train"]["iterations"] = steps
    augment = train_augmentation(run, info)
    images, masks = data.load("train", ids)
    train_set = InMemorySegmentation(images, masks, transform=augment)
    cfg = train_config(run, "segmentation", len(train_set), seed=seed, class_weights=class_weights_of(run, masks, info))
    model = build_model(model_config(run, data.num_classes, with_difficulty=False), seed=seed)
    start_from_pretrained(model, pretrained)
    start = time.perf_counter()
    train(model, train_set, cfg, num_classes=info["num_classes"], void_index=info["void_index"], val_set=None)
    seconds = time.perf_counter() - start
    scores = evaluate(model, test_set, num_classes=info["num_classes"], void_index=info["void_index"], cfg=cfg)
    return {"miou": 100 * scores["miou"], "epochs": cfg.epochs, "train_s": seconds,
            "iou": [None if math.isnan(v) else round(100 * v, 2) for v in scores["per_class_iou"]]}


def summary(rows, plateau_gain: float):
    """Per step count: each pool's mean, std and interval, the paired label gap; and the three
    figures of merit. pandas frames."""
    import pandas as pd
    from deal.stats import t_interval

    runs = pd.DataFrame(rows)
    wide = runs.pivot_table(index=["steps", "pool_seed", "train_seed"], columns="pool", values="miou").reset_index()
    wide["gap"] = wide["large"] - wide["small"]
    table = []
    for steps, cell in wide.groupby("steps"):
        row = {"steps": steps}
        for column in ("small", "large", "gap"):
            ci = t_interval(cell[column].tolist())
            row[column] = ci.mean
            row[f"{column}_std"] = ci.std
            row[f"{column}_low"], row[f"{column}_high"] = ci.low, ci.high
        for column in ("small", "large"):  # over training seeds within a pool, pooled over the pools
            within = cell.groupby("pool_seed")[column].var(ddof=1).dropna()
            row[f"{column}_noise"] = float(math.sqrt(within.mean())) if len(within) else None
        table.append(row)
    table = pd.DataFrame(table).sort_values("steps").reset_index(drop=True)
    # the small pool's gain to the next step count, paired by training seed
    gains = []
    for (a, cell_a), (b, cell_b) in zip(list(wide.groupby("steps"))[:-1], list(wide.groupby("steps"))[1:]):
        keys = ["pool_seed", "train_seed"]
        paired = cell_b.set_index(keys)["small"] - cell_a.set_index(keys)["small"]
        ci = t_interval(paired.dropna().tolist())
        gains.append({"steps": a, "next": b, "gain": ci.mean, "gain_low": ci.low, "gain_high": ci.high})
    gains = pd.DataFrame(gains, columns=["steps", "next", "gain", "gain_low", "gain_high"])
    flat = gains[gains["gain"] < plateau_gain]
    plateau = int(flat["steps"].iloc[0]) if len(flat) else None
    at = table[table["steps"] == (plateau if plateau is not None else table["steps"].max())].iloc[0]
    stds = [at["small_noise"], at["large_noise"]]
    merit = {
        "plateau_steps": plateau,  # None: still gaining at the largest step count measured
        "at_steps": int(at["steps"]),
        "training_noise": None if any(s is None or math.isnan(s) for s in stds) else float(max(stds)),
        "label_gap": float(at["gap"]),
        "label_gap_low": None if at["gap_low"] is None or math.isnan(at["gap_low"]) else float(at["gap_low"]),
        "label_gap_high": None if at["gap_high"] is None or math.isnan(at["gap_high"]) else float(at["gap_high"]),
    }
    return table, gains, merit


def show(value, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def printed(table, gains, merit, name: str, sizes: dict, pool_seeds: list[int], where: str) -> str:
    lines = [f"recipe {name}: small pool {sizes['small']}, large pool {sizes['large']} images, pool seeds "
             f"{', '.join(map(str, pool_seeds))}; {where}", "",
             "steps | small mIoU (std) [95 % CI] | large mIoU (std) [95 % CI] | gap large - small [95 % CI] | small gains next",
             "---|---|---|---|---"]
    gain_at = {int(g["steps"]): g for _, g in gains.iterrows()}
    for _, r in table.iterrows():
        cells = [str(int(r["steps"]))]
        for column in ("small", "large", "gap"):
            cells.append(f"{show(r[column])} ({show(r[column + '_std'])}) [{show(r[column + '_low'])}, "
                         f"{show(r[column + '_high'])}]")
        g = gain_at.get(int(r["steps"]))
        cells.append("-" if g is None else f"{show(g['gain'], 2)} [{show(g['gain_low'])}, {show(g['gain_high'])}]")
        lines.append(" | ".join(cells))
    plateau = merit["plateau_steps"]
    lines += ["",
              f"steps to plateau: {plateau if plateau is not None else 'not reached (still gaining at the largest count)'}",
              f"training noise at {merit['at_steps']} steps: {show(merit['training_noise'])} points "
              "(std over training seeds on one pool, the larger pool's)",
              f"label gap at {merit['at_steps']} steps: {show(merit['label_gap'])} [{show(merit['label_gap_low'])}, "
              f"{show(merit['label_gap_high'])}] points"]
    return "\n".join(lines)


def draw(table, path: str, name: str, where: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for column, colour in (("small", "#595959"), ("large", "#d62728")):
        ax.plot(table["steps"], table[column], marker="o", color=colour, label=f"{column} pool")
        if table[f"{column}_low"].notna().all():
            ax.fill_between(table["steps"], table[f"{column}_low"], table[f"{column}_high"], color=colour, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xticks(table["steps"], [str(int(s)) for s in table["steps"]])
    ax.set_xlabel("SGD steps")
    ax.set_ylabel("test mIoU (%)")
    ax.set_title(f"{name}\nmIoU against steps (mean, 95 % CI over training seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.text(0.01, 0.01, where, fontsize=6, color="#555555")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _work(task):
    data, params, ids, steps, seed, threads, pretrained = task
    import torch

    torch.set_num_threads(threads)
    from deal.data.memory import InMemorySegmentation

    return train_one(data, params, ids, steps, seed, InMemorySegmentation(*data.load("test")), pretrained)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="SGD steps of each training (ascending)")
    parser.add_argument("--train-seeds", type=int, default=3, help="training seeds per cell (>= 3 for an interval)")
    parser.add_argument("--pool-seeds", type=int, nargs="+", default=[0],
                        help="active-learning seeds whose initial pools are the small pools (default 0)")
    parser.add_argument("--factor", type=float, default=3.0, help="the large pool's size over the small one's (default 3)")
    parser.add_argument("--plateau-gain", type=float, default=1.0,
                        help="points the small pool must gain to the next step count to count as still improving")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param (repeatable)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="the recipe (default params.yaml)")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"), help="the prepared arrays (default: dvc.yaml's)")
    parser.add_argument("--pretrained", type=Path, default=Path("runs/pretrain"),
                        help="the pretrain stage's folder (default: dvc.yaml's)")
    parser.add_argument("--jobs", type=int, default=1, help="trainings side by side, cores split between them")
    parser.add_argument("--name", default="recipe", help="the recipe's name in the table and the JSON")
    parser.add_argument("--json", help="write the runs, the table and the figures of merit here")
    parser.add_argument("--figure", help="draw mIoU against steps for both pools here (PNG)")
    args = parser.parse_args()
    if args.steps != sorted(set(args.steps)):
        parser.error("--steps: give distinct step counts in ascending order")
    data = Prepared(args.prepared)
    params = parse_set(args.set, load_params(args.params, prepared=data))
    set_threads(params)

    import torch
    from deal.config import schedule
    from deal.runtime import resolve_device, resolve_precision

    train_ids = data.ids("train")
    small = schedule(params, len(train_ids))[0]
    large = min(len(train_ids), round(args.factor * small))
    pools = {seed: draw_pools(train_ids, small, large, seed) for seed in args.pool_seeds}
    sizes = {"small": small, "large": large}
    device = resolve_device(params["train"]["device"])
    precision = resolve_precision(params["train"]["precision"], device)
    cores = torch.get_num_threads()
    threads = max(1, cores // max(1, args.jobs))
    where = (f"{machine(device)}, {str(precision).replace('torch.', '') if precision else 'fp32'}, "
             f"{args.jobs} training(s) at a time x {threads} thread(s)")
    tasks = [(steps, pool_seed, pool, seed) for steps in args.steps for pool_seed in args.pool_seeds
             for pool in ("small", "large") for seed in range(args.train_seeds)]
    rows = []

    def record(task, result):
        steps, pool_seed, pool, seed = task
        rows.append({"steps": steps, "pool_seed": pool_seed, "pool": pool, "labeled": sizes[pool], "train_seed": seed,
                     **result})
        print(f"label_value: {args.name}: {steps} steps, pool seed {pool_seed}, {pool} pool ({sizes[pool]} images), "
              f"training seed {seed}: "
              f"test mIoU {result['miou']:.2f} ({result['train_s']:.0f} s)", flush=True)

    start = read_json(args.pretrained / "pretrain.json")["method"]
    if start != params["pretrain"]["method"]:
        fail(f"{args.pretrained}: holds the {start} pretraining but the recipe asks for {params['pretrain']['method']}; "
             "run `dvc repro pretrain` first")
    work = [(data, params, pools[pool_seed][pool], steps, seed, threads, args.pretrained) for steps, pool_seed, pool, seed in tasks]
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(args.jobs) as workers:
            for task, result in zip(tasks, workers.imap(_work, work)):
                record(task, result)
    else:
        from deal.data.memory import InMemorySegmentation

        test_set = InMemorySegmentation(*data.load("test"))
        for task, (_, p, ids, steps, seed, _, pretrained) in zip(tasks, work):
            record(task, train_one(data, p, ids, steps, seed, test_set, pretrained))
    table, gains, merit = summary(rows, args.plateau_gain)
    dataset = f"{params['dataset']['kind']} {tuple(params['dataset']['resize'])}"
    print()
    print(printed(table, gains, merit, f"{args.name} ({dataset})", sizes, args.pool_seeds, where))
    if args.figure:
        draw(table, args.figure, f"{args.name} ({dataset})", where)
    write_json(args.json, {
        "recipe": args.name, "dataset": dataset, "machine": where, "overrides": args.set, "pretrained": start, "pool_seeds": args.pool_seeds,
        "pools": sizes, "factor": args.factor, "plateau_gain": args.plateau_gain,
        "merit": merit, "table": table.to_dict(orient="records"), "gains": gains.to_dict(orient="records"),
        "runs": rows, "cpu_threads": os.cpu_count(),
    })


if __name__ == "__main__":
    main()
