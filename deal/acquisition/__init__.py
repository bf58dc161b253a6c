"""Acquisition functions: one small class per strategy behind one interface.

A heuristic maps a batch of network outputs to one score per image; higher
means "label this first". Selection (`select.top_b`) and random scores
(`random_scores`) need no torch, so this package imports it lazily: the
select stage stays cheap.

Not every method is a heuristic on one output. `KINDS` says what each
method needs from the pipeline, so that stages branch on kinds, never on
names:

- `model_free`  random: seeded scores, no torch (`select.random_scores`).
- `output`      a `Heuristic`: `heuristic(model(images)) -> B scores`, one
                forward pass of the round's model (entropy, margin,
                least_confidence; deal_ds and deal_de also need the
                difficulty branch, `NEEDS_DIFFICULTY`).
- `model`       a scorer that runs the model itself:
                `scorer.score_batch(model, images) -> B scores` (qbc: MC
                dropout passes, vote entropy; qbc_bald: BALD).
- `batch`       a joint batch selection from features of the unlabeled
                candidates and of the labeled pool:
                `coreset.select(unlabeled_feats, labeled_feats, b) -> indices`
                in pick order, or `.scores(...)` (b - position for picks, 0
                elsewhere); features from `runner.pool_features`.
- `images`      its own networks, trained each round on the labeled and
                unlabeled images; no segmentation model (vaal:
                `train(labeled, unlabeled) -> (vae, disc, history)`, then
                `scores(vae, disc, candidates)`).
- `loss_module` trained jointly with the segmentation network in place of
                `deal.training.train` (learning_loss:
                `deal.models.learning_loss.train_learning_loss`), then
                `score_batch(model, images)` with the trained module.

`runner.score_pool(strategy, model, dataset, cfg)` runs `output` and `model`
kinds over a dataset with the device and precision of `predict`.
"""

from __future__ import annotations

from importlib import import_module

# method name -> (module, class) of the per-output heuristics (kind "output").
HEURISTICS = {
    "entropy": ("deal.acquisition.uncertainty", "Entropy"),
    "margin": ("deal.acquisition.uncertainty", "Margin"),
    "least_confidence": ("deal.acquisition.uncertainty", "LeastConfidence"),
    "deal_ds": ("deal.acquisition.difficulty", "DifficultyScore"),
    "deal_de": ("deal.acquisition.difficulty", "DifficultyEntropy"),
}
# method name -> (module, class) of the strategies that are not per-output heuristics.
SCORERS = {
    "qbc": ("deal.acquisition.qbc", "QBC"),  # vote entropy (DEAL's comparison)
    "qbc_bald": ("deal.acquisition.qbc", "QBCBald"),  # the same committee scored by BALD
    "coreset": ("deal.acquisition.coreset", "CoreSet"),
    "vaal": ("deal.acquisition.vaal", "VAAL"),
    "learning_loss": ("deal.acquisition.learning_loss", "LearningLoss"),
}
KINDS = {
    "random": "model_free",
    **{name: "output" for name in HEURISTICS},
    "qbc": "model",
    "qbc_bald": "model",
    "coreset": "batch",
    "vaal": "images",
    "learning_loss": "loss_module",
}
# strategies that score without a model
MODEL_FREE = {"random"}
# strategies that need the difficulty branch
NEEDS_DIFFICULTY = {"deal_ds", "deal_de"}
# strategies that read the round's segmentation model (model.pt) to score
NEEDS_MODEL = {m for m, k in KINDS.items() if k in ("output", "model", "batch", "loss_module")}
# strategies that also read the labeled pool's images (features or VAE training)
NEEDS_LABELED = {"coreset", "vaal"}
# strategies that select a batch jointly rather than score images one by one
BATCH_SELECTION = {"coreset"}
# strategies with networks of their own to train each round
NEEDS_EXTRA_TRAINING = {"vaal", "learning_loss"}
# strategies whose segmentation training differs from deal.training.train
CUSTOM_TRAINING = {"learning_loss"}
METHODS = sorted(KINDS)


def get_heuristic(name: str, **kwargs):
    """Instantiate the heuristic called `name` with its keyword options."""
    if name in SCORERS:
        raise KeyError(f"{name!r} is not a per-output heuristic (kind {KINDS[name]!r}); use get_strategy")
    if name not in HEURISTICS:
        raise KeyError(f"unknown acquisition method {name!r}; known: {', '.join(METHODS)}")
    module, cls = HEURISTICS[name]
    return getattr(import_module(module), cls)(**kwargs)


def get_strategy(name: str, **kwargs):
    """Instantiate any model-based method (`HEURISTICS` or `SCORERS`) with its options."""
    table = {**HEURISTICS, **SCORERS}
    if name not in table:
        raise KeyError(f"unknown acquisition method {name!r}; known: {', '.join(METHODS)}")
    module, cls = table[name]
    return getattr(import_module(module), cls)(**kwargs)
