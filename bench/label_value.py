"""Does a recipe learn from labels? The same training on a small and a large labeled pool, at equal SGD steps.

    python bench/label_value.py --steps 150 600 [--seed 0] [--json bench/results/label_value.json]

Run in a workspace where `dvc repro` of the recipe has run (it reads
params.yaml, data/prepared and the seed's pools): for each step count, a
plain segmentation network is trained (as the train stage trains it, seeded
the same) on the seed's initial pool and on random's pool of the last round,
and evaluated on the test split. An active-learning comparison can only
separate methods where the large pool beats the small one at the same steps;
where the gap is within seed noise, the labels (and so the selection) barely
matter, and the curve of a fixed-step recipe is flat.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "stages"))

from bench._common import machine, table, write_json  # noqa: E402
from common import (  # noqa: E402
    check_seed, dataset_info, load_params, load_split, model_config, read_pool, set_threads, train_config, use_prepared,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="SGD steps of each training")
    parser.add_argument("--seed", type=int, default=0, help="the seed whose pools are used (default 0)")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"), help="the prepared arrays (default: dvc.yaml's)")
    parser.add_argument("--pools", default="data/pools/seed{seed}", help="the seed's pools folder (default: dvc.yaml's)")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    use_prepared(args.prepared)
    params = load_params()
    seed = check_seed(params, args.seed)
    last = params["rounds"][-1]["id"]
    pools_dir = Path(args.pools.format(seed=seed))
    pools = {"initial": read_pool(pools_dir / "initial.json"), f"random {last}": read_pool(pools_dir / last / "random.json")}

    from deal.data.memory import InMemorySegmentation
    from deal.data.transforms import train_transforms
    from deal.models import build_model
    from deal.runtime import resolve_device, resolve_precision
    from deal.training import evaluate, train

    set_threads(params)
    info = dataset_info()
    t = params["train"]
    augment = train_transforms(tuple(t["crop"]), scale=tuple(t["scale"]), void_index=info["void_index"], hflip=t["flip"])
    test_set = InMemorySegmentation(*load_split("test"))
    device = resolve_device(t["device"])
    train_sets = {name: InMemorySegmentation(*load_split("train", pool.labeled), transform=augment)
                  for name, pool in pools.items()}
    rows = []
    for steps in args.steps:
        for name, train_set in train_sets.items():
            run = copy.deepcopy(params)
            run["train"]["iterations"] = steps
            cfg = train_config(run, "segmentation", len(train_set), seed=seed)
            model = build_model(model_config(run, with_difficulty=False), seed=seed)
            start = time.perf_counter()
            train(model, train_set, cfg, num_classes=info["num_classes"], void_index=info["void_index"], val_set=None)
            seconds = time.perf_counter() - start
            scores = evaluate(model, test_set, num_classes=info["num_classes"], void_index=info["void_index"], cfg=cfg)
            rows.append({"steps": steps, "pool": name, "labeled": len(train_set), "epochs": cfg.epochs,
                         "miou": round(100 * scores["miou"], 2), "train_s": round(seconds, 1)})
            print(f"label_value: {steps} steps, {name} ({len(train_set)} images): test mIoU {rows[-1]['miou']:.2f}",
                  flush=True)
    precision = resolve_precision(t["precision"], device)
    where = f"{machine(device)}, {str(precision).replace('torch.', '') if precision else 'fp32'}"
    print(f"\n{params['dataset']['kind']} {tuple(params['dataset']['size'])}, seed {seed}, on {where}")
    print(table(rows, [("steps", "steps"), ("pool", "pool"), ("labeled", "labeled"), ("epochs", "epochs"),
                       ("miou", "test mIoU %"), ("train_s", "train s")]))
    write_json(args.json, {"machine": where, "dataset": params["dataset"]["kind"], "seed": seed, "rows": rows})


if __name__ == "__main__":
    main()
