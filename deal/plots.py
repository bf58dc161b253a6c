"""Figures: the active-learning curves in the style of the paper (matplotlib, no torch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

LABELS = {
    "random": "Random",
    "entropy": "Entropy",
    "margin": "Margin",
    "least_confidence": "Least confidence",
    "qbc": "QBC",
    "coreset": "Core-set",
    "vaal": "VAAL",
    "learning_loss": "Learning loss",
    "deal_ds": "DEAL (DS)",
    "deal_de": "DEAL (DE)",
}
MARKERS = "os^vD<>ph*"


def plot_curves(rows: Sequence[Mapping], path, title: str = "", reference: float | None = None) -> None:
    """mIoU (%) against % of labeled data, one line per method; `reference`
    (full-data mIoU, 0..1) as a dashed line when it has been computed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=150)
    for i, method in enumerate(methods):
        points = sorted((r["percent_labeled"], 100 * r["miou"]) for r in rows if r["method"] == method)
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], markersize=4, linewidth=1.5,
                label=LABELS.get(method, method))
    if reference is not None:
        ax.axhline(100 * reference, color="black", linestyle="--", linewidth=1, label="Full data")
    ax.set_xlabel("% of labeled data")
    ax.set_ylabel("mIoU (%)")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
