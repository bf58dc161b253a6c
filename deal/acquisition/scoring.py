"""One call that scores a round's candidates with any method of the table.

`score` dispatches on what the method scores from (deal.methods): the score
stage loads what `Method.reads_model` / `reads_labeled` say and calls it.

With several processes (torchrun, deal.distributed) every rank calls it and
gets the same scores, those of one process:
- per-image methods (entropy, margin, least confidence, DS, DE, learning
  loss) score their share of the candidates, gathered back in order;
- core-set computes the features of the candidates and of the labeled pool
  in shares, then runs its greedy k-center pick, which is joint over the
  pool, on rank 0 and passes it to the others;
- VAAL (its VAE and discriminator train on the whole pool, one step after
  the other) and QBC (its dropout masks are drawn batch after batch from one
  seeded generator per layer, so a share cannot draw its batches' masks
  without those of every batch before) run whole on rank 0;
- random needs no model: every rank draws the same scores.
The score stage starts several processes only for the methods that share
the work (`SPLIT`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from deal.methods import method as lookup

# what the methods that share the scoring over processes score from (the others run on rank 0)
SPLIT = ("output", "loss_module", "features")


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
    from functools import partial

    compute = partial(_score, name, options, ids, seed=seed, candidates=candidates, model=model, labeled=labeled,
                      unlabeled_images=unlabeled_images, batch=batch, cfg=cfg, report=report)
    if lookup(name).scores_from not in SPLIT + ("nothing",):  # whole, on rank 0 (the module docstring says why)
        from deal import distributed

        if distributed.active():
            return distributed.from_main(partial(compute, split=False))
    return compute()


def _score(name, options, ids, *, seed, candidates, model, labeled, unlabeled_images, batch, cfg, report,
           split: bool = True) -> list[float]:
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
        from deal import distributed

        strategy = get_strategy(name, **options)
        unlabeled = pool_features(model, candidate_set, cfg)
        labeled_features = pool_features(model, InMemorySegmentation(*labeled), cfg)
        return distributed.from_main(  # the joint pick, on rank 0
            lambda: strategy.scores(unlabeled, labeled_features, batch).float().cpu().tolist())
    if spec.scores_from == "committee":  # MC-dropout passes, seeded per round
        options.setdefault("seed", seed)
    if spec.scores_from == "loss_module":  # the module trained with this round's network
        if getattr(model, "loss_module", None) is None:
            raise ValueError(f"{name}: the model holds no loss prediction module")
        options["loss_module"] = model.loss_module
    return score_pool(get_strategy(name, **options), model, candidate_set, cfg, split=split).tolist()
