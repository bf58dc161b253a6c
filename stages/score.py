"""score: one acquisition score per image of the (sub-sampled) unlabeled pool.

Each round only a seeded fraction `rho` of the unlabeled pool is scored
(method_cfg.<method>.rho; published 0.5). Random needs no model and no torch.
Writes runs/<method>/<round>/scores.csv (id, score), highest first.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from host import delegate  # noqa: E402

delegate(__file__)

from common import (  # noqa: E402
    POOLS, RUNS, atomic_path, load_params, load_split, load_state, model_config, read_pool, round_index,
    set_threads, train_config,
)


def model_scores(params: dict, method: str, run: Path, candidates: list[str]) -> list[float]:
    import torch
    from deal.acquisition import get_heuristic
    from deal.data.memory import InMemorySegmentation
    from deal.models import build_model
    from deal.training import predict

    set_threads(params)
    deal_method = method in params["deal_methods"]
    state = load_state(run / ("difficulty.pt" if deal_method else "model.pt"))
    model = build_model(model_config(params, with_difficulty=any(k.startswith("difficulty.") for k in state)))
    model.load_state_dict(state)
    options = {k: v for k, v in params["method_cfg"][method].items() if k != "rho"}
    heuristic = get_heuristic(method, **options)
    images, masks = load_split("train", candidates)
    cfg = train_config(params, "segmentation", len(candidates), epochs=1)
    scores = [heuristic(out) for out, _ in predict(model, InMemorySegmentation(images, masks), cfg)]
    return torch.cat(scores).float().cpu().tolist() if scores else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", required=True)
    parser.add_argument("--round", required=True)
    args = parser.parse_args()
    params = load_params()
    from deal.acquisition.select import random_scores
    from deal.data.pools import subsample

    run = RUNS / args.method / args.round
    index = round_index(params, args.round)
    pool = read_pool(POOLS / args.round / f"{args.method}.json")
    rho = params["method_cfg"][args.method]["rho"]
    seed = params["seed"] * 1000 + index
    candidates = subsample(pool.unlabeled, rho, seed=seed)
    if args.method == "random":
        scores = random_scores(candidates, seed=seed)
    else:
        scores = model_scores(params, args.method, run, candidates)
    ranked = sorted(zip(candidates, scores), key=lambda p: (-p[1], p[0]))
    with atomic_path(run / "scores.csv") as tmp:
        tmp.write_text("id,score\n" + "".join(f"{sid},{score:.9g}\n" for sid, score in ranked))
    print(f"score: {args.method} {args.round}: {len(candidates)} of {len(pool.unlabeled)} unlabeled images scored (rho {rho})")


if __name__ == "__main__":
    main()
