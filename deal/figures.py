"""Figures of the semantic difficulty map (matplotlib, Agg, written as PNG).

Each figure is drawn on a fixed pixel grid, so its size is known in advance
and the same inputs give the same bytes:

* a grid figure is ``rows x cols`` panels; a panel is a caption band
  (``CAPTION_PX`` high) above an image area of ``IMAGE_W_PX`` x
  ``round(IMAGE_W_PX * H / W)`` pixels (the inputs' aspect ratio), with
  ``PAD_PX`` around it: ``panel_w = IMAGE_W_PX + 2 * PAD_PX``,
  ``panel_h = CAPTION_PX + image_h + PAD_PX``;
* a title band of ``TITLE_PX`` on top when there is a title, a colour-bar
  band of ``COLORBAR_PX`` on the right when there is a colour bar;
* a legend band of ``bottom`` pixels under the panels when there is a class
  legend (``LEGEND_ROW_PX`` a row of ``LEGEND_COLS`` classes, plus ``PAD_PX``);
* ``width = cols * panel_w + right``, ``height = title + rows * panel_h + bottom``
  (``Layout.size``, in PIL's ``(width, height)`` order), at ``DPI`` dots per
  inch: 2.4 inches per panel at 100 dpi.

``Layout.image_box(row, col)`` gives the pixel box of a panel's image area,
so a test can read the drawn pixels back. Figures are matplotlib ``Figure``
objects on an Agg canvas (no pyplot state, nothing to close), saved with
``format="png"`` so ``path`` may carry any (temporary) suffix.

The figures:

1. ``difficulty_map_figure``: one row per image, 5 columns
   ``image | ground truth | prediction | difficulty | error``, one shared
   colour bar, the classes' colours in a legend band below.
2. ``difficulty_levels_figure``: ``image``, ``difficulty``, then one panel
   per DE level, ``LEVEL_COLS`` panels per row.
3. ``selection_gallery``: the selected images, ``GALLERY_COLS`` per row,
   best score first; with difficulty maps, each row of images is followed
   by the row of their maps.
4. ``class_scatter``: one point per class, ``SCATTER_SIZE`` pixels.

and the learning curves of a run or a study (``plot_curves``: mIoU against
% of labeled data per method, each method in its colour of the method table,
deal.methods, in every figure).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from deal.analysis import VOID, _np, difficulty_iou_correlation
from deal.methods import METHODS, colour, label

DPI = 100
IMAGE_W_PX = 224
PAD_PX = 8
CAPTION_PX = 30
TITLE_PX = 32
COLORBAR_PX = 64
LEGEND_ROW_PX = 16
LEGEND_COLS = 10
CAPTION_FONT = 7
TITLE_FONT = 10
#: Colormap of the difficulty (0 black .. 1 pale yellow), on a fixed [0, 1] scale.
CMAP = "inferno"
LEVEL_COLS = 5
GALLERY_COLS = 5
SCATTER_SIZE = (600, 480)
#: Error-mask colours: right, error, void.
ERROR_COLORS = np.array([[0, 0, 0], [255, 255, 255], [128, 128, 128]], dtype=np.uint8)
#: Levels figure: out-of-level pixels in grey at this share of their brightness;
#: in-level pixels blended with LEVEL_HIGHLIGHT at this weight.
LEVEL_DIM = 0.25
LEVEL_HIGHLIGHT = (0, 255, 255)
LEVEL_BLEND = 0.55


@dataclass(frozen=True)
class Layout:
    """The pixel grid of a figure (see the module docstring)."""

    rows: int
    cols: int
    image_w: int
    image_h: int
    title: int = 0
    right: int = 0
    bottom: int = 0
    caption: int = CAPTION_PX
    pad: int = PAD_PX
    dpi: int = DPI

    @property
    def panel_w(self) -> int:
        return self.image_w + 2 * self.pad

    @property
    def panel_h(self) -> int:
        return self.caption + self.image_h + self.pad

    @property
    def width(self) -> int:
        return self.cols * self.panel_w + self.right

    @property
    def height(self) -> int:
        return self.title + self.rows * self.panel_h + self.bottom

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels, as ``PIL.Image.size``."""
        return (self.width, self.height)

    def image_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` pixels of a panel's image area (top-left origin)."""
        left = col * self.panel_w + self.pad
        top = self.title + row * self.panel_h + self.caption
        return (left, top, left + self.image_w, top + self.image_h)


def _image_h(height: int, width: int) -> int:
    return max(1, int(round(IMAGE_W_PX * height / width)))


def map_layout(n: int, height: int, width: int, title: bool = False, legend_entries: int = 0) -> Layout:
    """Layout of ``difficulty_map_figure`` for ``n`` images of ``height x width`` and a
    class legend of ``legend_entries`` entries (the classes and void)."""
    legend = PAD_PX + LEGEND_ROW_PX * math.ceil(legend_entries / LEGEND_COLS) if legend_entries else 0
    return Layout(rows=n, cols=5, image_w=IMAGE_W_PX, image_h=_image_h(height, width),
                  title=TITLE_PX if title else 0, right=COLORBAR_PX, bottom=legend)


def levels_layout(k: int, height: int, width: int, cols: int = LEVEL_COLS) -> Layout:
    """Layout of ``difficulty_levels_figure``: ``k + 2`` panels, a title band."""
    cols = min(cols, k + 2)
    return Layout(rows=math.ceil((k + 2) / cols), cols=cols, image_w=IMAGE_W_PX,
                  image_h=_image_h(height, width), title=TITLE_PX)


def gallery_layout(n: int, height: int, width: int, with_difficulty: bool = False,
                   title: bool = False, cols: int = GALLERY_COLS) -> Layout:
    """Layout of ``selection_gallery`` for ``n`` images."""
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols) * (2 if with_difficulty else 1)
    return Layout(rows=rows, cols=cols, image_w=IMAGE_W_PX, image_h=_image_h(height, width),
                  title=TITLE_PX if title else 0)


# --------------------------------------------------------------------------- drawing


def _figure(width: int, height: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A quarter pixel more, so that Agg's int() truncation gives exactly width x height.
    fig = Figure(figsize=((width + 0.25) / DPI, (height + 0.25) / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _axes(fig, layout: Layout, row: int, col: int):
    left, top, right, bottom = layout.image_box(row, col)
    fw, fh = fig.bbox.width, fig.bbox.height
    ax = fig.add_axes((left / fw, 1 - bottom / fh, (right - left) / fw, (bottom - top) / fh))
    ax.set_axis_off()
    return ax


def _caption(ax, text: str) -> None:
    from matplotlib.transforms import offset_copy

    # a text 2 points above the axes, as set_title(pad=2) places it: a title makes
    # every draw measure the axes' (hidden) tick labels, most of a gallery's drawing time
    ax.text(0.5, 1.0, text, fontsize=CAPTION_FONT, linespacing=1.1, ha="center", va="bottom",
            transform=offset_copy(ax.transAxes, fig=ax.figure, y=2, units="points"))


def _title(fig, layout: Layout, text: str) -> None:
    fig.text(0.5, 1 - (layout.title / 2) / fig.bbox.height, text, ha="center", va="center",
             fontsize=TITLE_FONT)


def _save(fig, path) -> None:
    fig.savefig(path, format="png", dpi=DPI)


def notice_figure(text: str, path, width: int = 480, height: int = 120) -> None:
    """A figure that says why it holds no measurement (no labelled test split): stated, not drawn empty."""
    fig = _figure(width, height)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=TITLE_FONT, wrap=True)
    _save(fig, path)


def _hwc(image) -> np.ndarray:
    """``3 x H x W`` (or ``H x W x 3``) image -> ``H x W x 3`` uint8."""
    a = _np(image)
    if a.ndim != 3:
        raise ValueError(f"expected one RGB image (3 x H x W), got shape {a.shape}")
    if a.shape[0] == 3:  # the documented layout (wins for a 3 x 3 x 3 image)
        a = a.transpose(1, 2, 0)
    elif a.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (3 x H x W), got shape {a.shape}")
    if a.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (use deal.data.transforms.denormalize), got {a.dtype}")
    return a


def _maps(difficulty, n: int | None = None) -> np.ndarray:
    d = _np(difficulty).astype(np.float32, copy=False)
    if d.ndim == 4 and d.shape[1] == 1:
        d = d[:, 0]
    if n is not None and (d.ndim != 3 or d.shape[0] != n):
        raise ValueError(f"expected {n} difficulty maps (N x H x W), got shape {d.shape}")
    return d


def _show_map(ax, dmap, vmax: float):
    return ax.imshow(dmap, cmap=CMAP, vmin=0.0, vmax=vmax, interpolation="nearest", aspect="auto")


def _show(ax, rgb) -> None:
    ax.imshow(rgb, interpolation="nearest", aspect="auto")


def _short_id(sample_id, limit: int = 30) -> str:
    name = PurePosixPath(str(sample_id)).name
    return name if len(name) <= limit else name[: limit - 3] + "..."


# --------------------------------------------------------------------------- 1. maps


def difficulty_map_figure(images, masks, predictions, difficulty, errors, info, path, title: str | None = None,
                          ids: Sequence[str] | None = None, vmax: float = 1.0) -> Layout:
    """Rows of ``image | ground truth | prediction | difficulty | error`` (the paper's
    table, with the prediction the errors come from), and a legend of the classes.

    ``images`` uint8 ``N x 3 x H x W``; ``masks`` and ``predictions`` ``N x H x W``
    train ids (the prediction's void-labelled pixels drawn as void too);
    ``difficulty`` ``N x H x W`` (or ``N x 1 x H x W``) in (0, 1), drawn with
    ``CMAP`` on ``[0, vmax]`` and one colour bar; ``errors`` ``N x H x W``, 0
    right (black), 1 error (white), 2 void (grey; pixels where ``mask ==
    info.void_index`` are void too). Ground truth in ``info``'s palette. The
    image caption is the sample id (``ids``) or its row number; the others
    give the mean difficulty and the error share of the non-void pixels.
    """
    imgs = _np(images)
    m = _np(masks)
    n = imgs.shape[0]
    d = _maps(difficulty, n)
    e = _np(errors).astype(np.int64)
    pred = _np(predictions)
    if m.shape != d.shape or e.shape != d.shape or pred.shape != d.shape or imgs.shape[-2:] != d.shape[-2:]:
        raise ValueError(
            f"shapes differ: images {imgs.shape}, masks {m.shape}, predictions {pred.shape}, "
            f"difficulty {d.shape}, errors {e.shape}"
        )
    if n == 0:
        raise ValueError("difficulty_map_figure needs at least one image")
    layout = map_layout(n, d.shape[1], d.shape[2], title=bool(title), legend_entries=info.num_classes + 1)
    fig = _figure(*layout.size)
    if title:
        _title(fig, layout, title)
    im = None
    for r in range(n):
        void = (m[r] == info.void_index) | (e[r] == VOID)
        codes = np.where(void, VOID, (e[r] == 1).astype(np.int64))
        valid = ~void
        share = 100.0 * float((codes == 1).sum()) / max(1, int(valid.sum()))
        name = _short_id(ids[r]) if ids is not None else f"#{r}"
        ax = _axes(fig, layout, r, 0)
        _show(ax, _hwc(imgs[r]))
        _caption(ax, f"{name}\nimage")
        ax = _axes(fig, layout, r, 1)
        _show(ax, info.colorize(m[r]))
        _caption(ax, "ground truth")
        ax = _axes(fig, layout, r, 2)
        _show(ax, info.colorize(np.where(m[r] == info.void_index, info.void_index, pred[r])))
        _caption(ax, "prediction\n(void where the ground truth is)")
        ax = _axes(fig, layout, r, 3)
        im = _show_map(ax, d[r], vmax)
        _caption(ax, f"difficulty\nmean {float(d[r].mean()):.3f}")
        ax = _axes(fig, layout, r, 4)
        _show(ax, ERROR_COLORS[codes])
        _caption(ax, f"error (white), void (grey)\n{share:.1f} % wrong")
    # One colour bar for every row: the maps share the [0, vmax] scale.
    top = layout.image_box(0, 4)[1]
    bottom = layout.image_box(n - 1, 4)[3]
    fw, fh = fig.bbox.width, fig.bbox.height
    x0 = layout.cols * layout.panel_w + 6
    cax = fig.add_axes((x0 / fw, 1 - bottom / fh, 12 / fw, (bottom - top) / fh))
    cb = fig.colorbar(im, cax=cax)
    cb.ax.tick_params(labelsize=CAPTION_FONT)
    cb.set_label("difficulty $M^d$", fontsize=CAPTION_FONT)
    _class_legend(fig, layout, info)
    _save(fig, path)
    return layout


def _class_legend(fig, layout: Layout, info) -> None:
    """The classes' colours (ground truth and prediction), in the band under the panels."""
    from matplotlib.patches import Patch

    colours = [np.asarray(c) / 255.0 for c in info.palette] + [np.asarray(info.void_color) / 255.0]
    names = list(info.class_names) + ["void"]
    handles = [Patch(facecolor=c, edgecolor="black", linewidth=0.4, label=name) for c, name in zip(colours, names)]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=min(LEGEND_COLS, len(handles)),
               fontsize=CAPTION_FONT, frameon=False, handlelength=1.2, columnspacing=1.2, borderaxespad=0.2)


# --------------------------------------------------------------------------- 2. levels


def level_edges(difficulty, k: int, span: str = "image") -> np.ndarray:
    """The ``k + 1`` bin edges DE uses for one map (its min..max, or [0, 1])."""
    d = _np(difficulty).astype(np.float64)
    if span == "image":
        lo, hi = float(d.min()), float(d.max())
    else:
        lo, hi = 0.0, 1.0
    return lo + (hi - lo) * np.arange(k + 1) / k


def difficulty_levels_figure(image, difficulty, k: int, span: str, path, title: str | None = None,
                             cols: int = LEVEL_COLS) -> Layout:
    """One image's map split into its ``k`` DE levels, one panel per level.

    Panels, row-major, ``cols`` per row: the image, its difficulty map on the
    fixed [0, 1] scale (captioned with its DE score, min and max), then level
    1..k: the pixels at that level tinted with ``LEVEL_HIGHLIGHT`` over their
    image colours, the rest dimmed grey, captioned with the level's difficulty
    range and pixel share. Levels come from
    ``deal.acquisition.difficulty.difficulty_levels``, so they are DE's bins
    (``span="image"``: the map's own min..max; ``"fixed"``: [0, 1]). ``image``
    uint8 ``3 x H x W``; ``difficulty`` ``H x W`` (or ``1 x H x W``).
    """
    import torch

    from deal.acquisition.difficulty import difficulty_entropy, difficulty_levels

    d = _maps(difficulty)
    if d.ndim == 3 and d.shape[0] == 1:
        d = d[0]
    if d.ndim != 2:
        raise ValueError(f"expected one difficulty map (H x W), got shape {d.shape}")
    img = _hwc(image)
    if img.shape[:2] != d.shape:
        raise ValueError(f"image {img.shape[:2]} and difficulty map {d.shape} differ in size")
    t = torch.from_numpy(np.ascontiguousarray(d))[None]
    levels = difficulty_levels(t, k, span)[0].reshape(d.shape).numpy()
    de = float(difficulty_entropy(t, k, span)[0])
    edges = level_edges(d, k, span)
    layout = levels_layout(k, *d.shape, cols=cols)
    fig = _figure(*layout.size)
    _title(fig, layout, title or f"difficulty levels: k = {k}, span = {span}, DE = {de:.3f}")
    grey = (img.astype(np.float32).mean(axis=2, keepdims=True) * LEVEL_DIM).astype(np.uint8)
    grey = np.repeat(grey, 3, axis=2)
    lit = (img.astype(np.float32) * (1 - LEVEL_BLEND)
           + np.asarray(LEVEL_HIGHLIGHT, np.float32) * LEVEL_BLEND).round().astype(np.uint8)
    ax = _axes(fig, layout, 0, 0)
    _show(ax, img)
    _caption(ax, "image")
    ax = _axes(fig, layout, *divmod(1, layout.cols))
    _show_map(ax, d, 1.0)
    _caption(ax, f"difficulty, DE = {de:.3f}\nmin {d.min():.3f}, max {d.max():.3f}")
    for i in range(k):
        r, c = divmod(i + 2, layout.cols)
        inside = levels == i
        ax = _axes(fig, layout, r, c)
        _show(ax, np.where(inside[..., None], lit, grey))
        _caption(ax, f"level {i + 1}/{k}: {edges[i]:.3f}-{edges[i + 1]:.3f}\n"
                     f"{100.0 * inside.mean():.1f} % of pixels")
    _save(fig, path)
    return layout


# --------------------------------------------------------------------------- 3. gallery


def selection_gallery(images, scores, ids: Sequence[str], path, difficulty=None,
                      title: str | None = None, cols: int = GALLERY_COLS,
                      score_name: str = "score") -> Layout:
    """The images a round selected, best score first, ``cols`` per row.

    Caption: rank, sample id (file name) and score (``scores=None``, e.g.
    random selection: kept in the given order, no score). With ``difficulty``
    (``N x H x W``, DEAL methods), each row of images is followed by the row
    of their difficulty maps on the fixed [0, 1] scale, captioned with their
    mean (DS).
    """
    imgs = _np(images)
    n = imgs.shape[0]
    if n == 0:
        raise ValueError("selection_gallery needs at least one image")
    if len(ids) != n:
        raise ValueError(f"{n} images but {len(ids)} ids")
    d = None if difficulty is None else _maps(difficulty, n)
    if scores is None:
        order = list(range(n))
    else:
        s = _np(scores).astype(np.float64).ravel()
        if s.size != n:
            raise ValueError(f"{n} images but {s.size} scores")
        order = sorted(range(n), key=lambda i: (-s[i], i))
    layout = gallery_layout(n, imgs.shape[-2], imgs.shape[-1], with_difficulty=d is not None,
                            title=bool(title), cols=cols)
    fig = _figure(*layout.size)
    if title:
        _title(fig, layout, title)
    step = 2 if d is not None else 1
    for rank, i in enumerate(order):
        r, c = divmod(rank, layout.cols)
        ax = _axes(fig, layout, r * step, c)
        _show(ax, _hwc(imgs[i]))
        text = f"{rank + 1}. {_short_id(ids[i])}"
        if scores is not None:
            text += f"\n{score_name} {s[i]:.4g}"
        _caption(ax, text)
        if d is not None:
            ax = _axes(fig, layout, r * step + 1, c)
            _show_map(ax, d[i], 1.0)
            _caption(ax, f"difficulty, mean {float(d[i].mean()):.3f}")
    _save(fig, path)
    return layout


# --------------------------------------------------------------------------- 4. scatter


def class_scatter(rows: Sequence[dict], path, rho: float | None = None, y: str = "one_minus_iou",
                  title: str | None = None, palette: Sequence[Sequence[int]] | None = None
                  ) -> tuple[int, int]:
    """One labelled point per class: x = mean difficulty, y = ``1 - IoU``
    (``y="one_minus_iou"``) or ``IoU`` (``y="iou"``), from ``deal.analysis.class_table``
    rows. Classes with a NaN are left out (named under the axes). The title
    gives Spearman's rho (mean difficulty vs 1 - IoU; computed from ``rows``
    when not given). Points in the dataset ``palette`` (by row order) when
    given. ``SCATTER_SIZE`` pixels; returns it.
    """
    if y not in ("one_minus_iou", "iou"):
        raise ValueError(f"y must be 'one_minus_iou' or 'iou', got {y!r}")
    if rho is None:
        rho = difficulty_iou_correlation([r["mean_difficulty"] for r in rows], [r["iou"] for r in rows])
    width, height = SCATTER_SIZE
    fig = _figure(width, height)
    ax = fig.add_axes((0.12, 0.14, 0.83, 0.72))
    shown, missing = [], []
    for i, r in enumerate(rows):
        x, v = r["mean_difficulty"], r[y]
        if math.isnan(x) or math.isnan(v):
            missing.append(r["class"])
            continue
        colour = np.asarray(palette[i]) / 255.0 if palette is not None else "tab:blue"
        ax.scatter([x], [v], s=36, color=colour, edgecolors="black", linewidths=0.6, zorder=3)
        shown.append(r)
    ax.set_xlabel("mean difficulty of the class's pixels")
    ax.set_ylabel("1 - IoU" if y == "one_minus_iou" else "IoU")
    ax.grid(True, alpha=0.3)
    ax.margins(0.12)
    _place_labels(fig, ax, [(r["mean_difficulty"], r[y], r["class"]) for r in shown])
    rho_text = "n/a" if rho is None or math.isnan(rho) else f"{rho:+.3f}"
    head = f"Spearman ρ (mean difficulty vs 1 - IoU) = {rho_text} over {len(shown)} classes"
    fig.text(0.5, 1 - 20 / fig.bbox.height, f"{title}\n{head}" if title else head,
             ha="center", va="center", fontsize=TITLE_FONT - 1)
    if missing:
        fig.text(0.01, 0.01, "not in the test pixels: " + ", ".join(missing), fontsize=CAPTION_FONT,
                 ha="left", va="bottom")
    _save(fig, path)
    return SCATTER_SIZE


#: label offsets (points) tried in turn around a point: right, left, above, below, then farther out
LABEL_OFFSETS = [(5, 3), (-5, 3), (5, -9), (-5, -9), (0, 8), (0, -14), (10, 12), (-10, 12), (10, -18), (-10, -18),
                 (16, 0), (-16, 0), (0, 20), (0, -26)]


def _place_labels(fig, ax, points) -> None:
    """Label each point at the first offset where its text overlaps no label placed before it
    and no other point (greedy, in order of x, so neighbours see each other); the first offset
    when none is free."""
    from matplotlib.transforms import Bbox

    ax.autoscale_view()  # the final limits, so that data map to the pixels drawn
    renderer = fig.canvas.get_renderer()
    centres = ax.transData.transform([(x, v) for x, v, _ in points]) if points else []
    dots = [Bbox.from_bounds(cx - 4, cy - 4, 8, 8) for cx, cy in centres]
    placed = []
    for i in sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1])):
        x, v, name = points[i]
        for dx, dy in LABEL_OFFSETS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            text = ax.annotate(name, (x, v), xytext=(dx, dy), textcoords="offset points", fontsize=8, ha=ha)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(b) for b in placed) and not any(box.overlaps(d) for j, d in enumerate(dots) if j != i):
                break
            text.remove()
        else:
            dx, dy = LABEL_OFFSETS[0]
            text = ax.annotate(name, (x, v), xytext=(dx, dy), textcoords="offset points", fontsize=8)
            box = text.get_window_extent(renderer)
        placed.append(box)


# --------------------------------------------------------------------------- learning curves


def marker(method: str) -> str:
    return METHODS[method].marker if method in METHODS else "o"


def plot_curves(summary: Sequence[Mapping], path, title: str = "", reference: float | None = None,
                published: Mapping | None = None) -> None:
    """mIoU (%) against % of labeled data: per method the mean over seeds, with its 95 %
    interval shaded where there are two seeds or more (deal.stats.summarize rows);
    `reference` (full-data mIoU, 0..1) as a dashed line when it has been computed;
    `published` (deal.published) as dashed curves in each method's colour, for the methods drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in summary))
    seeds = max((r["n"] for r in summary), default=1)
    fig, ax = plt.subplots(figsize=(8.4, 4.6), dpi=150)
    for method in methods:
        mine = sorted((r for r in summary if r["method"] == method), key=lambda r: r["percent_labeled"])
        xs = [r["percent_labeled"] for r in mine]
        n = min(r["n"] for r in mine)
        (line,) = ax.plot(xs, [100 * r["mean"] for r in mine], marker=marker(method), markersize=4, color=colour(method),
                          linewidth=1.5, label=label(method) + (f" (n={n})" if seeds > 1 else ""))
        if all(r["ci_low"] is not None for r in mine):
            ax.fill_between(xs, [100 * r["ci_low"] for r in mine], [100 * r["ci_high"] for r in mine],
                            color=line.get_color(), alpha=0.18, linewidth=0)
    if reference is not None:
        ax.axhline(100 * reference, color="black", linestyle="--", linewidth=1, label="Full data (ours)")
    if published:  # the published curves of the methods this run also runs
        for method, points in published["curves"].items():
            points = [(x, y) for x, y in points if y is not None]
            if method not in methods or not points:
                continue
            xs, ys = zip(*points)
            ax.plot(xs, ys, linestyle="--", linewidth=1, marker=".", color=colour(method),
                    label=f"{label(method)}, published")
        ax.axhline(published["full"], color="grey", linestyle=":", linewidth=1, label="Full data, published")
        ax.text(0.01, 0.99, published["note"], transform=ax.transAxes, fontsize=6, va="top", color="grey")
    ax.set_xlabel("% of labeled data")
    ax.set_ylabel("mIoU (%)" + (", mean over seeds (95 % CI shaded)" if seeds > 1 else ""))
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    # outside the axes, where no line runs
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False, borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
