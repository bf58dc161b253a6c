"""One call that scores a round's candidates with any method of the table.

`score` dispatches on what the method scores from (deal.methods): the score
stage loads what `Method.reads_model` / `reads_labeled` say and calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from deal.methods import method as lookup


def score(
    name: str,
    options: Mapping,
    ids: Sequence[str],
    *,
    seed: int,
    candidates=None,
    model=None,
    labeled=None,
    unlabeled_images=None,
    batch: int = 0,
    cfg=None,
    report: Callable[[str], None] | None = None,
) -> list[float]:
    """One score per candidate of `ids` (higher: label first).

    `options`: the method's params (method_cfg.<name>; `rho` is the stage's).
    `seed`: the round's draws (deal.config.round_seed). `candidates` and
    `labeled`: (uint8 images N x 3 x H x W, masks N x H x W) of the
    candidates and of the labeled pool; `unlabeled_images`: the whole
    unlabeled pool (VAAL trains on it). `batch`: the images the step adds
    (core-set picks that many). `cfg`: a deal.training.TrainConfig for the
    device, precision and batch size of inference.
    """
    spec = lookup(name)
    options = {k: v for k, v in options.items() if k != "rho"}
    if spec.scores_from == "nothing":
        from deal.acquisition.select import random_scores

        return random_scores(list(ids), seed=seed)

    from deal.acquisition import get_strategy
    from deal.acquisition.runner import pool_features, score_pool
    from deal.data.memory import InMemorySegmentation

    if spec.scores_from == "images":  # VAAL: its VAE and discriminator, trained this round
        options.setdefault("seed", seed)
        options.setdefault("precision", cfg.precision)
        options.setdefault("device", cfg.device)
        vaal = get_strategy(name, **options)
        vae, disc, history = vaal.train(labeled[0], unlabeled_images)
        if report is not None:
            report(f"{name} trained {len(history)} iterations on {len(labeled[0])} labeled / "
                   f"{len(unlabeled_images)} unlabeled images")
        return vaal.scores(vae, disc, candidates[0]).float().cpu().tolist()

    if model is None:
        raise ValueError(f"{name} scores from the round's network; pass model=")
    candidate_set = InMemorySegmentation(*candidates)
    if spec.scores_from == "features":  # core-set: a joint pick, written as scores b - position
        strategy = get_strategy(name, **options)
        unlabeled = pool_features(model, candidate_set, cfg)
        labeled_features = pool_features(model, InMemorySegmentation(*labeled), cfg)
        return strategy.scores(unlabeled, labeled_features, batch).float().cpu().tolist()
    if spec.scores_from == "committee":  # MC-dropout passes, seeded per round
        options.setdefault("seed", seed)
    if spec.scores_from == "loss_module":  # the module trained with this round's network
        if getattr(model, "loss_module", None) is None:
            raise ValueError(f"{name}: the model holds no loss prediction module")
        options["loss_module"] = model.loss_module
    return score_pool(get_strategy(name, **options), model, candidate_set, cfg).tolist()
