import numpy as np
import pytest
import torch
from PIL import Image

from deal.acquisition.difficulty import difficulty_levels
from deal.analysis import class_table
from deal.data.camvid import CAMVID_INFO
from deal.data.cityscapes import CITYSCAPES_INFO
from deal.data.synthetic import SYNTHETIC_INFO
from deal.figures import (
    CAPTION_PX,
    CMAP,
    COLORBAR_PX,
    DPI,
    ERROR_COLORS,
    IMAGE_W_PX,
    LEGEND_COLS,
    LEGEND_ROW_PX,
    LEVEL_COLS,
    PAD_PX,
    SCATTER_SIZE,
    TITLE_PX,
    class_scatter,
    difficulty_levels_figure,
    difficulty_map_figure,
    gallery_layout,
    level_edges,
    selection_gallery,
)

H, W = 24, 32  # CamVid's 3:4 aspect, tiny
PANEL_W = IMAGE_W_PX + 2 * PAD_PX  # 240 px = 2.4 in at 100 dpi
IMAGE_H = round(IMAGE_W_PX * H / W)
PANEL_H = CAPTION_PX + IMAGE_H + PAD_PX


def _png(path) -> np.ndarray:
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _centre(png, layout, row, col, dx=0.5, dy=0.5):
    left, top, right, bottom = layout.image_box(row, col)
    return png[int(top + dy * (bottom - top)), int(left + dx * (right - left))].astype(int)


def _uniform_images(colours):
    return np.stack([np.broadcast_to(np.array(c, np.uint8)[:, None, None], (3, H, W)) for c in colours])


def _cmap_rgb(v):
    import matplotlib

    return np.round(np.array(matplotlib.colormaps[CMAP](v)[:3]) * 255).astype(int)


@pytest.mark.parametrize("info", [SYNTHETIC_INFO, CAMVID_INFO, CITYSCAPES_INFO], ids=lambda i: i.name)
@pytest.mark.parametrize("title", [None, "round r01"])
def test_difficulty_map_figure_panels(tmp_path, info, title):
    classes = [info.num_classes - 1, 2, 0]
    predicted = [0, 2, 1]  # row 1 right, rows 0 and 2 wrong
    images = _uniform_images([(200, 30, 40), (10, 120, 250), (90, 90, 90)])
    masks = np.stack([np.full((H, W), c, np.uint8) for c in classes])
    masks[:, :, : W // 8] = info.void_index  # a void strip on the left
    predictions = np.stack([np.full((H, W), c, np.uint8) for c in predicted])
    difficulty = np.stack([np.full((H, W), v, np.float32) for v in (0.1, 0.5, 0.9)])
    errors = np.stack([np.full((H, W), e, np.uint8) for e in (0, 1, 0)])
    errors[2, : H // 2] = 2  # void given in the error mask too
    path = tmp_path / "map.png.tmp"  # a stage's temporary name
    layout = difficulty_map_figure(images, torch.from_numpy(masks), predictions, torch.from_numpy(difficulty)[:, None],
                                   errors, info, path, title=title, ids=["a/x.png", "b/y.png", "z.png"])
    png = _png(path)
    legend = PAD_PX + LEGEND_ROW_PX * -(-(info.num_classes + 1) // LEGEND_COLS)  # the classes and void
    width = 5 * PANEL_W + COLORBAR_PX
    height = 3 * PANEL_H + (TITLE_PX if title else 0) + legend
    assert (png.shape[1], png.shape[0]) == layout.size == (width, height)
    assert width == 5 * 2.4 * DPI + COLORBAR_PX
    for r, c in enumerate(classes):
        assert _centre(png, layout, r, 0).tolist() == images[r, :, 0, 0].tolist()
        assert _centre(png, layout, r, 1).tolist() == list(info.palette[c])  # ground truth colours
        assert _centre(png, layout, r, 1, dx=0.02).tolist() == list(info.void_color)
        assert _centre(png, layout, r, 2).tolist() == list(info.palette[predicted[r]])  # the prediction
        assert _centre(png, layout, r, 2, dx=0.02).tolist() == list(info.void_color)  # void where the truth is
        assert np.abs(_centre(png, layout, r, 3) - _cmap_rgb(difficulty[r, 0, 0])).max() <= 2
        assert _centre(png, layout, r, 4, dx=0.02).tolist() == ERROR_COLORS[2].tolist()  # void
    assert _centre(png, layout, 0, 4).tolist() == ERROR_COLORS[0].tolist()  # right
    assert _centre(png, layout, 1, 4).tolist() == ERROR_COLORS[1].tolist()  # error
    assert _centre(png, layout, 2, 4, dy=0.25).tolist() == ERROR_COLORS[2].tolist()  # void from errors
    assert _centre(png, layout, 2, 4, dy=0.75).tolist() == ERROR_COLORS[0].tolist()
    # the legend band holds every class's colour
    band = png[height - legend:, :, :3].reshape(-1, 3)
    present = {tuple(int(v) for v in px) for px in np.unique(band, axis=0)}
    assert all(tuple(colour) in present for colour in info.palette)


def test_difficulty_map_figure_is_deterministic_and_checks_shapes(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, H, W), dtype=np.uint8)
    masks = rng.integers(0, 12, (2, H, W)).astype(np.uint8)
    d = rng.random((2, H, W)).astype(np.float32)
    e = rng.integers(0, 3, (2, H, W)).astype(np.uint8)
    pred = rng.integers(0, 11, (2, H, W)).astype(np.uint8)
    difficulty_map_figure(images, masks, pred, d, e, CAMVID_INFO, tmp_path / "a.png")
    difficulty_map_figure(images, masks, pred, d, e, CAMVID_INFO, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    with pytest.raises(ValueError):
        difficulty_map_figure(images, masks[:, :-1], pred, d, e, CAMVID_INFO, tmp_path / "c.png")
    with pytest.raises(ValueError):
        difficulty_map_figure(images, masks, pred[:, :-1], d, e, CAMVID_INFO, tmp_path / "c.png")


@pytest.mark.parametrize("k, span", [(8, "image"), (4, "fixed")])
def test_difficulty_levels_figure_one_panel_per_de_level(tmp_path, k, span):
    image = _uniform_images([(100, 100, 100)])[0]
    d = np.full((H, W), 0.05, np.float32)
    d[:, W // 2 :] = 0.95  # left half in the lowest level, right half in the highest
    layout = difficulty_levels_figure(torch.from_numpy(image), d, k, span, tmp_path / "levels.png")
    png = _png(tmp_path / "levels.png")
    panels = k + 2
    rows = -(-panels // LEVEL_COLS)
    assert (layout.rows, layout.cols) == (rows, LEVEL_COLS)
    assert (png.shape[1], png.shape[0]) == layout.size == (LEVEL_COLS * PANEL_W, TITLE_PX + rows * PANEL_H)
    levels = difficulty_levels(torch.from_numpy(d)[None], k, span)[0].reshape(H, W)
    assert levels[0, 0] == 0 and levels[0, -1] == k - 1
    assert level_edges(d, k, span)[[0, -1]].tolist() == pytest.approx([0.05, 0.95] if span == "image" else [0, 1])

    def lit(i, dx):  # is the level-i panel highlighted at horizontal position dx?
        r, c = divmod(i + 2, LEVEL_COLS)
        px = _centre(png, layout, r, c, dx=dx)
        return px[2] > 150 and px[0] < 90  # cyan tint vs dim grey
    assert lit(0, 0.25) and not lit(0, 0.75)
    assert lit(k - 1, 0.75) and not lit(k - 1, 0.25)
    assert not any(lit(i, x) for i in range(1, k - 1) for x in (0.25, 0.75))


@pytest.mark.parametrize("with_difficulty", [False, True])
def test_selection_gallery_best_score_first(tmp_path, with_difficulty):
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250), (250, 0, 250), (9, 9, 9)]
    images = _uniform_images(colours)
    scores = np.array([0.1, 0.7, 0.3, 0.9, 0.2, 0.5, 0.4])
    d = np.stack([np.full((H, W), s, np.float32) for s in scores]) if with_difficulty else None
    ids = [f"train/{i:04d}.png" for i in range(7)]
    layout = selection_gallery(images, scores, ids, tmp_path / "g.png", difficulty=d, title="deal_de r01")
    png = _png(tmp_path / "g.png")
    rows = 2 * (2 if with_difficulty else 1)  # 7 images, 5 per row
    assert layout == gallery_layout(7, H, W, with_difficulty, title=True)
    assert (png.shape[1], png.shape[0]) == layout.size == (5 * PANEL_W, TITLE_PX + rows * PANEL_H)
    step = 2 if with_difficulty else 1
    for rank, i in enumerate(np.argsort(-scores, kind="stable")):
        r, c = divmod(rank, 5)
        assert _centre(png, layout, r * step, c).tolist() == list(colours[i])
        if with_difficulty:
            assert np.abs(_centre(png, layout, r * step + 1, c) - _cmap_rgb(scores[i])).max() <= 2


def test_selection_gallery_without_scores_keeps_the_order(tmp_path):
    images = _uniform_images([(1, 2, 3), (200, 100, 50)])
    layout = selection_gallery(images, None, ["a.png", "b.png"], tmp_path / "g.png")
    png = _png(tmp_path / "g.png")
    assert (png.shape[1], png.shape[0]) == layout.size == (2 * PANEL_W, PANEL_H)
    assert _centre(png, layout, 0, 1).tolist() == [200, 100, 50]
    with pytest.raises(ValueError):
        selection_gallery(images, [1.0], ["a.png", "b.png"], tmp_path / "h.png")


@pytest.mark.parametrize("info", [SYNTHETIC_INFO, CAMVID_INFO], ids=lambda i: i.name)
def test_class_scatter_size(tmp_path, info):
    n = info.num_classes
    difficulty = np.linspace(0.1, 0.6, n)
    difficulty[3] = np.nan  # a class absent from the test split
    iou = np.linspace(0.9, 0.2, n)
    rows = class_table(info.class_names, difficulty, iou)
    assert class_scatter(rows, tmp_path / "s.png.tmp", palette=info.palette, title="t") == SCATTER_SIZE
    assert class_scatter(rows, tmp_path / "t.png", rho=0.5, y="iou") == SCATTER_SIZE
    for name in ("s.png.tmp", "t.png"):
        png = _png(tmp_path / name)
        assert (png.shape[1], png.shape[0]) == SCATTER_SIZE
    with pytest.raises(ValueError):
        class_scatter(rows, tmp_path / "u.png", y="dice")
