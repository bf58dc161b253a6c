"""Acquisition functions: one small class per strategy behind one interface.

The method table (`deal.methods`) names each method's scorer and what it
scores from; `get_strategy(name, **options)` builds the scorer and
`deal.acquisition.scoring.score` runs any method on a round's candidates.
What each kind of scorer implements:

- `output`      a `Heuristic`: `heuristic(model(images)) -> B scores` from one
                forward pass (entropy, margin, least_confidence, deal_ds, deal_de).
- `committee`   `scorer.score_batch(model, images) -> B scores` over MC-dropout
                passes (qbc: vote entropy; qbc_bald: BALD).
- `features`    a joint pick from pooled features of the candidates and of the
                labeled pool: `coreset.select(unlabeled, labeled, b)` in pick
                order, or `.scores(...)` (b - position for picks, 0 elsewhere).
- `images`      its own networks, trained each round on labeled vs unlabeled
                images (vaal: `train(labeled, unlabeled)`, then `scores(...)`).
- `loss_module` `score_batch(model, images)` with the loss prediction module
                trained with the round's network (learning_loss).
- `nothing`     random: seeded scores, no torch (`select.random_scores`).

Selection (`select.top_b`) and random scores need no torch, so this package
imports scorers lazily: the select stage stays cheap.
"""

from __future__ import annotations

from importlib import import_module

from deal.methods import METHODS, NAMES


def get_strategy(name: str, **kwargs):
    """The scorer of method `name` (deal.methods), built with its options."""
    if name not in METHODS:
        raise KeyError(f"unknown acquisition method {name!r}; known: {', '.join(NAMES)}")
    if METHODS[name].scorer is None:
        raise KeyError(f"{name!r} scores without a model: use deal.acquisition.select.random_scores")
    module, cls = METHODS[name].scorer.split(":")
    return getattr(import_module(module), cls)(**kwargs)


def get_heuristic(name: str, **kwargs):
    """A per-output heuristic (scores_from "output"): `heuristic(model(images)) -> B scores`."""
    if name in METHODS and METHODS[name].scores_from != "output":
        raise KeyError(f"{name!r} is not a per-output heuristic (it scores from {METHODS[name].scores_from}); "
                       "use get_strategy")
    return get_strategy(name, **kwargs)
