"""Acquisition functions: one small class per strategy behind one interface.

A heuristic maps a batch of network outputs to one score per image; higher
means "label this first". Selection (`select.top_b`) and random scores
(`random_scores`) need no torch, so this package imports it lazily: the
select stage stays cheap.
"""

from __future__ import annotations

from importlib import import_module

# method name -> (module, class); the pipeline validates method names against this.
HEURISTICS = {
    "entropy": ("deal.acquisition.uncertainty", "Entropy"),
    "margin": ("deal.acquisition.uncertainty", "Margin"),
    "least_confidence": ("deal.acquisition.uncertainty", "LeastConfidence"),
    "deal_ds": ("deal.acquisition.difficulty", "DifficultyScore"),
    "deal_de": ("deal.acquisition.difficulty", "DifficultyEntropy"),
}
# strategies that score without a model
MODEL_FREE = {"random"}
# strategies that need the difficulty branch
NEEDS_DIFFICULTY = {"deal_ds", "deal_de"}
METHODS = sorted(set(HEURISTICS) | MODEL_FREE)


def get_heuristic(name: str, **kwargs):
    """Instantiate the heuristic called `name` with its keyword options."""
    if name not in HEURISTICS:
        raise KeyError(f"unknown acquisition method {name!r}; known: {', '.join(METHODS)}")
    module, cls = HEURISTICS[name]
    return getattr(import_module(module), cls)(**kwargs)
