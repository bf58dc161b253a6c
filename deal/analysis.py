"""Numbers about the semantic difficulty map `M^d`: per class, against IoU, against errors.

Everything here is NumPy only (no matplotlib, no torch at import time) and
memory-bounded: the accumulators take a batch at a time, so a stage that runs
a model over a split never holds more than one batch of maps.

* ``ClassDifficulty``: the mean of `M^d` over the pixels of each class
  (ground-truth classes; void excluded). ``C`` sums and ``C`` counts.
* ``ErrorAUROC``: how well `M^d` predicts the error mask `M^e` over pixels,
  as an AUROC (void excluded). Two histograms of the difficulty, one for
  error pixels and one for right pixels, with ``bins`` equal bins over
  [0, 1] (``2 * bins`` int64 counts: 1 MiB at the default 2**16 bins). The
  AUROC of the binned values is exact (tie-aware Mann-Whitney, the same
  number ``auroc`` gives on the binned values); binning only
  turns pixels whose difficulties fall in one bin (width 1.5e-5 by default)
  into ties, which moves the AUROC by at most half the share of
  (error, right) pairs that share a bin.
* ``DifficultyAnalysis``: both, fed from one loop, and ``summary`` that
  joins them with the per-class IoU of ``deal.metrics.ConfusionMatrix``.
* ``spearman`` (average ranks for ties, NaN pairs dropped), ``class_table``
  and ``difficulty_iou_correlation``: the Spearman correlation between each
  class's mean difficulty and its 1 - IoU over the classes present in both.

Error masks follow the pipeline's packing (``stages/errors.py``): uint8
``0`` right, ``1`` error, ``2`` void; ``error_codes`` builds one from a
prediction. Inputs may be NumPy arrays or (CPU or GPU) torch tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

RIGHT, ERROR, VOID = 0, 1, 2  # a pixel of an error mask (errors.npy): the one place these codes are written
#: Default number of histogram bins over [0, 1] for the error AUROC.
AUROC_BINS = 1 << 16


def _np(x) -> np.ndarray:
    """NumPy view of an array or a torch tensor (any device, any float dtype)."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach()
        if x.dtype.is_floating_point and x.dtype.itemsize < 4:  # bf16/fp16 have no NumPy twin
            x = x.float()
        x = x.cpu().numpy()
    return np.asarray(x)


def _squeeze_channel(d: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Accept `B x 1 x H x W` maps (the model's layout) next to `B x H x W` masks."""
    if d.ndim == like.ndim + 1 and d.shape[-3] == 1:
        d = d.reshape(d.shape[:-3] + d.shape[-2:])
    if d.shape != like.shape:
        raise ValueError(f"difficulty map of shape {d.shape} does not match the mask shape {like.shape}")
    return d


def error_codes(prediction, mask, void_index: int) -> np.ndarray:
    """uint8 error mask: ``0`` right, ``1`` error, ``2`` void (where ``mask == void_index``)."""
    p, m = _np(prediction), _np(mask)
    if p.shape != m.shape:
        raise ValueError(f"prediction of shape {p.shape} does not match the mask shape {m.shape}")
    out = (p != m).astype(np.uint8)
    out[m == void_index] = VOID
    return out


# --------------------------------------------------------------------------- per class


class ClassDifficulty:
    """Mean difficulty of the pixels of each ground-truth class, a batch at a time.

    ``update(difficulty, mask)``: ``difficulty`` float in (0, 1), ``mask`` integer
    train ids, same shape (``N x H x W``, or ``N x 1 x H x W`` maps). Pixels whose
    label is void or outside ``[0, num_classes)`` are ignored. ``result()``:
    float64 ``[C]``, NaN for a class with no pixel.
    """

    def __init__(self, num_classes: int, void_index: int) -> None:
        self.num_classes = int(num_classes)
        self.void_index = int(void_index)
        self.sums = np.zeros(self.num_classes, dtype=np.float64)
        self.counts = np.zeros(self.num_classes, dtype=np.int64)

    def update(self, difficulty, mask) -> None:
        m = _np(mask)
        d = _squeeze_channel(_np(difficulty), m).ravel()
        m = m.ravel().astype(np.int64, copy=False)
        keep = (m >= 0) & (m < self.num_classes) & (m != self.void_index)
        m, d = m[keep], d[keep].astype(np.float64, copy=False)
        self.sums += np.bincount(m, weights=d, minlength=self.num_classes)
        self.counts += np.bincount(m, minlength=self.num_classes)

    def result(self) -> np.ndarray:
        out = np.full(self.num_classes, np.nan)
        present = self.counts > 0
        out[present] = self.sums[present] / self.counts[present]
        return out


def per_class_difficulty(difficulty, masks, num_classes: int, void_index: int) -> np.ndarray:
    """Mean difficulty of each class's pixels (``[C]``, NaN for absent classes)."""
    acc = ClassDifficulty(num_classes, void_index)
    acc.update(difficulty, masks)
    return acc.result()


# --------------------------------------------------------------------------- error AUROC


def bin_index(values, bins: int) -> np.ndarray:
    """Bin of each value among ``bins`` equal bins over [0, 1] (1.0 in the last bin)."""
    v = _np(values).astype(np.float64, copy=False)
    return np.clip(np.floor(v * bins), 0, bins - 1).astype(np.int64)


def auroc_from_histograms(positive, negative) -> float:
    """AUROC of a binned score from the counts of positives and negatives per bin.

    Bins are in increasing score order; pairs in one bin are ties and count
    one half (the tie-aware Mann-Whitney statistic). The one AUROC of the project:
    ``auroc`` is this over the distinct scores.
    NaN when either class is empty.
    """
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    below = np.cumsum(neg) - neg  # negatives in strictly lower bins
    return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


def auroc(scores, labels) -> float:
    """Area under the ROC curve of `scores` predicting binary `labels`, exactly: the
    histogram form over the distinct scores (tied scores count one half, so a constant
    score gives 0.5). NaN when one class is absent."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    _, inverse = np.unique(scores, return_inverse=True)
    positive = np.bincount(inverse[labels], minlength=inverse.max(initial=-1) + 1)
    negative = np.bincount(inverse[~labels], minlength=inverse.max(initial=-1) + 1)
    return auroc_from_histograms(positive, negative)


class ErrorAUROC:
    """AUROC of the difficulty map as a predictor of the error mask, over pixels.

    ``update(difficulty, errors, valid=None)``: ``errors`` is the packed mask
    (0 right, 1 error, 2 void) or a boolean/0-1 mask; pixels where ``valid`` is
    False, or where ``errors == 2``, are left out. Keeps two histograms
    (``hist_error``, ``hist_right``) and the exact sums, so ``mean_error`` and
    ``mean_right`` (mean difficulty of error / right pixels) are exact.
    """

    def __init__(self, bins: int = AUROC_BINS) -> None:
        if bins < 2:
            raise ValueError(f"need at least 2 bins, got {bins}")
        self.bins = int(bins)
        self.hist_error = np.zeros(self.bins, dtype=np.int64)
        self.hist_right = np.zeros(self.bins, dtype=np.int64)
        self.sum_error = 0.0
        self.sum_right = 0.0

    def update(self, difficulty, errors, valid=None) -> None:
        e = _np(errors)
        d = _squeeze_channel(_np(difficulty), e).ravel()
        e = e.ravel()
        keep = e != VOID
        if valid is not None:
            keep &= _np(valid).ravel().astype(bool)
        d, wrong = d[keep], e[keep].astype(bool)
        both = np.bincount(bin_index(d, self.bins) + self.bins * wrong, minlength=2 * self.bins)
        self.hist_right += both[: self.bins]
        self.hist_error += both[self.bins :]
        d = d.astype(np.float64, copy=False)
        s_error = float(d[wrong].sum())
        self.sum_error += s_error
        self.sum_right += float(d.sum()) - s_error

    @property
    def n_error(self) -> int:
        return int(self.hist_error.sum())

    @property
    def n_right(self) -> int:
        return int(self.hist_right.sum())

    @property
    def mean_error(self) -> float:
        return self.sum_error / self.n_error if self.n_error else float("nan")

    @property
    def mean_right(self) -> float:
        return self.sum_right / self.n_right if self.n_right else float("nan")

    def result(self) -> float:
        """The AUROC (NaN when there is no error pixel, or no right pixel)."""
        return auroc_from_histograms(self.hist_error, self.hist_right)


def error_auroc(difficulty, errors, valid=None, bins: int = AUROC_BINS) -> float:
    """One-shot ``ErrorAUROC``."""
    acc = ErrorAUROC(bins)
    acc.update(difficulty, errors, valid)
    return acc.result()


# --------------------------------------------------------------------------- correlation


def rankdata(x) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (scipy's ``method="average"``)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def spearman(x, y) -> float:
    """Spearman's rank correlation; pairs with a NaN are dropped, ties get average ranks.

    NaN when fewer than 2 pairs remain or either side is constant.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"spearman needs two sequences of one length, got {x.size} and {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    if keep.sum() < 2:
        return float("nan")
    rx, ry = rankdata(x[keep]), rankdata(y[keep])
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    if denom == 0:
        return float("nan")
    return float(np.clip((rx * ry).sum() / denom, -1.0, 1.0))


def difficulty_iou_correlation(mean_difficulty, iou) -> float:
    """Spearman between each class's mean difficulty and its ``1 - IoU``, over the
    classes where both are known (DEAL's claim: positive)."""
    return spearman(mean_difficulty, 1.0 - np.asarray(iou, dtype=np.float64))


def class_table(
    class_names: Sequence[str], mean_difficulty, iou, pixels=None
) -> list[dict]:
    """One row per class: ``class``, ``mean_difficulty``, ``iou``, ``one_minus_iou``
    (floats, NaN where unknown), and ``pixels`` (the class's test pixels) when given."""
    md = np.asarray(mean_difficulty, dtype=np.float64)
    io = np.asarray(iou, dtype=np.float64)
    if not len(class_names) == md.size == io.size:
        raise ValueError(
            f"{len(class_names)} class names, {md.size} mean difficulties and {io.size} IoUs"
        )
    rows = []
    for i, name in enumerate(class_names):
        row = {
            "class": str(name),
            "mean_difficulty": float(md[i]),
            "iou": float(io[i]),
            "one_minus_iou": float(1.0 - io[i]),
        }
        if pixels is not None:
            row["pixels"] = int(pixels[i])
        rows.append(row)
    return rows


def hardest_classes(rows: Sequence[dict], n: int = 3) -> list[str]:
    """Names of the ``n`` classes with the highest mean difficulty (NaN rows skipped)."""
    known = [r for r in rows if not math.isnan(r["mean_difficulty"])]
    known.sort(key=lambda r: (-r["mean_difficulty"], r["class"]))
    return [r["class"] for r in known[:n]]


# --------------------------------------------------------------------------- together


class DifficultyAnalysis:
    """``ClassDifficulty`` and ``ErrorAUROC`` fed from one evaluation loop.

    ``update(difficulty, mask, prediction=None, errors=None)``: pass either the
    prediction (argmax train ids; errors are derived, void excluded) or a packed
    ``errors`` mask (0/1/2). Memory: ``C`` sums and counts plus ``2 * bins``
    histogram counts, whatever the split size.
    """

    def __init__(self, num_classes: int, void_index: int, bins: int = AUROC_BINS) -> None:
        self.classes = ClassDifficulty(num_classes, void_index)
        self.errors = ErrorAUROC(bins)
        self.void_index = int(void_index)

    def update(self, difficulty, mask, prediction=None, errors=None) -> None:
        if (prediction is None) == (errors is None):
            raise ValueError("pass exactly one of prediction= or errors=")
        m = _np(mask)
        d = _squeeze_channel(_np(difficulty), m)
        e = error_codes(prediction, m, self.void_index) if errors is None else _np(errors)
        self.classes.update(d, m)
        self.errors.update(d, e)

    def summary(self, class_names: Sequence[str], iou) -> dict:
        """``rows`` (``class_table`` with pixel counts), ``spearman`` (mean difficulty
        vs 1 - IoU over classes), ``auroc`` (difficulty vs error over pixels),
        ``mean_difficulty_error`` / ``mean_difficulty_right``, ``hardest`` (top 3)."""
        mean = self.classes.result()
        rows = class_table(class_names, mean, iou, pixels=self.classes.counts)
        return {
            "rows": rows,
            "spearman": difficulty_iou_correlation(mean, iou),
            "auroc": self.errors.result(),
            "mean_difficulty_error": self.errors.mean_error,
            "mean_difficulty_right": self.errors.mean_right,
            "error_share": self.errors.n_error / max(1, self.errors.n_error + self.errors.n_right),
            "hardest": hardest_classes(rows),
        }


def example_indices(count: int, n: int, seed: int) -> list[int]:
    """A fixed, seeded, sorted choice of ``min(n, count)`` indices in ``range(count)``:
    the same test images in every round's figure for one seed."""
    n = min(int(n), int(count))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(int(count), size=n, replace=False))


def analyze_difficulty(model, dataset, cfg, class_names: Sequence[str], void_index: int,
                       examples: Sequence[int] = (), iou: Sequence[float] | None = None) -> dict:
    """One pass of `model` (with its difficulty branch) over `dataset` (test images and
    masks): `summary` (DifficultyAnalysis.summary) and, for the positions `examples`,
    their difficulty maps, error codes and predicted train ids (`maps`, `errors`,
    `predictions`: position -> H x W array) for the figures. `iou`: the per-class IoU of the same network on `dataset`, when an
    evaluation already measured it (else the IoU of this pass). `cfg`:
    deal.training.TrainConfig."""
    import torch

    from deal.metrics import ConfusionMatrix
    from deal.training import predict

    analysis = DifficultyAnalysis(len(class_names), void_index)
    confusion = ConfusionMatrix(len(class_names), void_index) if iou is None else None
    wanted, maps, errors, predictions, start = set(examples), {}, {}, {}, 0
    for out, target in predict(model, dataset, cfg):
        prediction = out.logits.argmax(dim=1)
        difficulty = torch.sigmoid(out.difficulty_logits.float())[:, 0]
        analysis.update(difficulty, target, prediction=prediction)
        if confusion is not None:
            confusion.update(target, prediction)
        for i in range(len(target)):
            if start + i in wanted:
                maps[start + i] = difficulty[i].cpu().numpy()
                errors[start + i] = error_codes(prediction[i], target[i], void_index)
                predictions[start + i] = prediction[i].cpu().numpy().astype(np.uint8)
        start += len(target)
    summary = analysis.summary(class_names, confusion.compute()["per_class_iou"] if iou is None else list(iou))
    return {"summary": summary, "maps": maps, "errors": errors, "predictions": predictions}


def branch_measures(logits, errors, loss: str) -> dict:
    """How the difficulty branch's logits (N x H x W) fit the error masks `errors` (0/1/2,
    the errors stage's packing) of the same images: ``labeled_bce``, the branch's training
    loss `loss` (deal.losses.DIFFICULTY_LOSSES) over the non-void pixels, and
    ``labeled_auroc``, the AUROC of sigmoid(logits) as a predictor of error (None when one
    kind of pixel is absent)."""
    import torch

    from deal.losses import DIFFICULTY_LOSSES

    logits = torch.as_tensor(logits).float()
    errors = torch.as_tensor(errors)
    valid = errors != VOID
    target = (errors == ERROR).float()
    bce = DIFFICULTY_LOSSES[loss](logits, target, valid)
    found = auroc(torch.sigmoid(logits)[valid].numpy(), target[valid].numpy())
    return {"labeled_bce": float(bce), "labeled_auroc": None if math.isnan(found) else found}


def class_table_csv(rows: Sequence[dict]) -> str:
    """`class_table` rows as CSV: class, mean_difficulty, iou, one_minus_iou, pixels."""
    import csv
    import io

    def cell(value) -> str:
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6f}"

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["class", "mean_difficulty", "iou", "one_minus_iou", "pixels"])
    for row in rows:
        writer.writerow([row["class"]] + [cell(row[c]) for c in ("mean_difficulty", "iou", "one_minus_iou")] + [row.get("pixels", "")])
    return buffer.getvalue()
