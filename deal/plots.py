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


def plot_curves(summary: Sequence[Mapping], path, title: str = "", reference: float | None = None,
                published: Mapping | None = None) -> None:
    """mIoU (%) against % of labeled data: per method the mean over seeds, with its 95 %
    interval shaded where there are two seeds or more (deal.stats.summarize rows);
    `reference` (full-data mIoU, 0..1) as a dashed line when it has been computed;
    `published` (deal.published) as dashed curves in each method's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in summary))
    seeds = max((r["n"] for r in summary), default=1)
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=150)
    colours = {}
    for i, method in enumerate(methods):
        mine = sorted((r for r in summary if r["method"] == method), key=lambda r: r["percent_labeled"])
        xs = [r["percent_labeled"] for r in mine]
        n = min(r["n"] for r in mine)
        (line,) = ax.plot(xs, [100 * r["mean"] for r in mine], marker=MARKERS[i % len(MARKERS)], markersize=4,
                          linewidth=1.5, label=LABELS.get(method, method) + (f" (n={n})" if seeds > 1 else ""))
        colours[method] = line.get_color()
        if all(r["ci_low"] is not None for r in mine):
            ax.fill_between(xs, [100 * r["ci_low"] for r in mine], [100 * r["ci_high"] for r in mine],
                            color=line.get_color(), alpha=0.18, linewidth=0)
    if reference is not None:
        ax.axhline(100 * reference, color="black", linestyle="--", linewidth=1, label="Full data (ours)")
    if published:
        for method, points in published["curves"].items():
            xs, ys = zip(*points)
            ax.plot(xs, ys, linestyle="--", linewidth=1, marker=".", color=colours.get(method, "grey"),
                    label=f"{LABELS.get(method, method)}, published")
        ax.axhline(published["full"], color="grey", linestyle=":", linewidth=1, label="Full data, published")
        ax.text(0.01, 0.99, published["note"], transform=ax.transAxes, fontsize=6, va="top", color="grey")
    ax.set_xlabel("% of labeled data")
    ax.set_ylabel("mIoU (%)" + (", mean over seeds (95 % CI shaded)" if seeds > 1 else ""))
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=7, ncol=2 if published else 1)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
