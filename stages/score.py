"""score: one acquisition score per image of the (sub-sampled) unlabeled pool.

Each round only a seeded fraction `rho` of the unlabeled pool is scored
(method_cfg.<method>.rho; published 0.5). Random needs no model and no torch;
VAAL trains its own VAE and discriminator here; learning loss reads the loss
prediction module its train stage saved in model.pt; core-set's joint pick is
written as scores (b - pick position) so that select takes it in order.
Writes runs/seed<S>/<method>/<round>/scores.csv (id, score), highest first.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from host import delegate  # noqa: E402

delegate(__file__)

from common import (  # noqa: E402
    atomic_path, check_device, check_seed, fail, load_model, load_params, load_split, read_pool, round_index, schedule,
    set_threads, stage_args, train_config,
)


def model_scores(params: dict, method: str, run: Path, pool, candidates: list[str], seed: int) -> list[float]:
    """Scores of the methods that read the round's network (all but random and VAAL)."""
    from deal.acquisition import KINDS, get_strategy
    from deal.acquisition.runner import pool_features, score_pool
    from deal.data.memory import InMemorySegmentation

    deal_method = method in params["deal_methods"]
    model = load_model(params, run / ("difficulty.pt" if deal_method else "model.pt"))
    options = {k: v for k, v in params["method_cfg"][method].items() if k != "rho"}
    cfg = train_config(params, "segmentation", len(candidates), epochs=1)
    candidate_set = InMemorySegmentation(*load_split("train", candidates))
    if KINDS[method] == "batch":  # core-set: a joint pick, written as scores b - position
        strategy = get_strategy(method, **options)
        unlabeled = pool_features(model, candidate_set, cfg)
        labeled = pool_features(model, InMemorySegmentation(*load_split("train", pool.labeled)), cfg)
        return strategy.scores(unlabeled, labeled, batch_size(params, pool)).float().cpu().tolist()
    if KINDS[method] == "model":  # QBC: MC-dropout passes, seeded per round
        options.setdefault("seed", seed)
    if KINDS[method] == "loss_module":  # learning loss: the module trained with this round's network
        if model.loss_module is None:
            fail(f"{run / 'model.pt'}: holds no loss prediction module; rerun its train stage (dvc repro -f)")
        options["loss_module"] = model.loss_module
    return score_pool(get_strategy(method, **options), model, candidate_set, cfg).tolist()


def vaal_scores(params: dict, method: str, pool, candidates: list[str], seed: int) -> list[float]:
    """VAAL: its VAE and discriminator, trained this round on labeled vs unlabeled images."""
    from deal.acquisition import get_strategy

    options = {k: v for k, v in params["method_cfg"][method].items() if k != "rho"}
    options.setdefault("seed", seed)
    options.setdefault("precision", params["train"]["precision"])
    options.setdefault("device", params["train"]["device"])
    check_device(options["device"])
    vaal = get_strategy(method, **options)
    labeled, _ = load_split("train", pool.labeled)
    unlabeled, _ = load_split("train", pool.unlabeled)
    vae, disc, history = vaal.train(labeled, unlabeled)
    print(f"score: vaal trained {len(history)} iterations on {len(labeled)} labeled / {len(unlabeled)} unlabeled images")
    candidate_images, _ = load_split("train", candidates)
    return vaal.scores(vae, disc, candidate_images).float().cpu().tolist()


def batch_size(params: dict, pool) -> int:
    counts = schedule(params, len(pool.split_ids))
    return counts[1] - counts[0] if len(counts) > 1 else 0


def main() -> None:
    args = stage_args(__doc__)
    params = load_params()
    al_seed = check_seed(params, args.seed)
    from deal.acquisition import KINDS
    from deal.acquisition.select import random_scores
    from deal.data.pools import subsample

    run = al_seed.run(args.method, args.round)
    index = round_index(params, args.round)
    pool = read_pool(al_seed.pool(args.round, args.method))
    rho = params["method_cfg"][args.method]["rho"]
    seed = al_seed.seed * 1000 + index  # this seed's and round's draws (sub-sample, MC dropout, VAAL)
    candidates = subsample(pool.unlabeled, rho, seed=seed)
    set_threads(params)
    if KINDS[args.method] == "model_free":
        scores = random_scores(candidates, seed=seed)
    elif KINDS[args.method] == "images":
        scores = vaal_scores(params, args.method, pool, candidates, seed)
    else:
        scores = model_scores(params, args.method, run, pool, candidates, seed)
    ranked = sorted(zip(candidates, scores), key=lambda p: (-p[1], p[0]))
    with atomic_path(run / "scores.csv") as tmp:
        tmp.write_text("id,score\n" + "".join(f"{sid},{score:.9g}\n" for sid, score in ranked))
    print(f"score: seed {al_seed.seed} {args.method} {args.round}: {len(candidates)} of {len(pool.unlabeled)} unlabeled images scored (rho {rho})")


if __name__ == "__main__":
    main()
