"""Procedural street scenes: the embedded default dataset.

``generate_scene(seed, index, height, width)`` draws one scene, deterministic
per ``(seed, index)``, with the 11 CamVid classes and void (11). The scene is
a one-point-perspective street seen from a car: a ray caster for the static
world (road, pavement and kerb, facades with windows, a far end of buildings or
trees, sky), then objects painted far to near (fences, trees, poles with lamps,
signs and traffic lights, parked and moving cars, pedestrians, rare
bicyclists, void clutter, sometimes the ego hood). Textures are anchored in
world coordinates (windows, paving tiles, lane marks, fence slats), and
lighting (sun side, cast shadows, haze, exposure, white balance) and noise
vary per image, so colour alone does not separate the classes while each
class keeps learnable colour and texture cues.

``write_synthetic(root, ...)`` writes the CamVid SegNet layout as PNGs, so
``CamVid(root)`` (or ``SyntheticStreets(root)``) reads it.

Run ``python -m deal.data.synthetic --figure docs/samples.png`` for a figure,
``--bench`` for the generator speed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import time
import uuid
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from .base import DatasetInfo
from .camvid import CAMVID_CLASSES, CAMVID_PALETTE, CamVid

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST, VOID = range(12)

SYNTHETIC_INFO = DatasetInfo(
    name="synthetic-streets",
    class_names=CAMVID_CLASSES,
    palette=CAMVID_PALETTE,
    void_index=VOID,
)

#: Index offsets so that each split has its own scenes and changing one
#: split's size never changes another split's images.
SPLIT_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}

#: Probability that an image has bicyclists (must stay <= 0.15).
P_BICYCLIST = 0.10

DEFAULT_SIZE = (64, 64)

_FACADE_COLOURS = np.array(
    [
        [150, 75, 55],  # brick
        [170, 95, 70],  # light brick
        [205, 185, 150],  # sandstone
        [215, 205, 185],  # cream render
        [185, 185, 180],  # concrete
        [130, 128, 125],  # dark concrete
        [225, 222, 215],  # white render
        [160, 140, 115],  # brown stone
        [190, 160, 120],  # ochre
        [115, 95, 90],  # dark brick
    ],
    dtype=np.float32,
)

_CAR_COLOURS = np.array(
    [
        [225, 225, 225],  # white
        [30, 30, 35],  # black
        [165, 168, 172],  # silver
        [100, 102, 108],  # grey
        [165, 30, 30],  # red
        [35, 55, 140],  # blue
        [40, 80, 55],  # green
        [210, 180, 40],  # yellow
        [120, 30, 40],  # maroon
    ],
    dtype=np.float32,
)

_CLOTHES = np.array(
    [
        [30, 30, 35],
        [50, 55, 90],
        [150, 30, 35],
        [200, 200, 195],
        [60, 90, 60],
        [120, 100, 70],
        [80, 80, 85],
        [190, 150, 60],
        [40, 70, 140],
        [170, 80, 120],
    ],
    dtype=np.float32,
)

_SKIN = np.array([[230, 190, 160], [200, 150, 115], [150, 100, 70], [95, 65, 45]], dtype=np.float32)


# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=32)
def _grid(h: int, w: int):
    yy = (np.arange(h, dtype=np.float32) + 0.5)[:, None]
    xx = (np.arange(w, dtype=np.float32) + 0.5)[None, :]
    return yy, xx


@lru_cache(maxsize=64)
def _upsample_plan(n: int, cells: int):
    pos = (np.arange(n, dtype=np.float32) + 0.5) * (cells - 1) / n
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, cells - 1)
    wt = (pos - i0).astype(np.float32)
    return i0, i1, wt


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise with features about ``cell`` pixels wide, roughly unit variance."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    g = rng.standard_normal((gh, gw), dtype=np.float32)
    y0, y1, wy = _upsample_plan(h, gh)
    x0, x1, wx = _upsample_plan(w, gw)
    a, b = g[y0], g[y1]
    top = a[:, x0] * (1 - wx) + a[:, x1] * wx
    bot = b[:, x0] * (1 - wx) + b[:, x1] * wx
    return (top * (1 - wy)[:, None] + bot * wy[:, None]) * 1.5


class _Canvas:
    """Label, colour and depth buffers with vectorised shape painting in bounding boxes."""

    def __init__(self, h: int, w: int, rng: np.random.Generator):
        self.h, self.w = h, w
        self.label = np.full((h, w), SKY, dtype=np.uint8)
        self.img = np.zeros((h, w, 3), dtype=np.float32)
        self.depth = np.full((h, w), np.inf, dtype=np.float32)
        self.rng = rng
        self.fine = rng.standard_normal((h, w), dtype=np.float32)  # texture grain
        self.med = _smooth_noise(rng, h, w, max(2.0, w / 24))
        self.coarse = _smooth_noise(rng, h, w, max(4.0, w / 6))
        self.tree_base = None

    def window(self, x0, y0, x1, y1):
        """Integer pixel box holding pixel centres in [x0, x1) x [y0, y1), or None."""
        c0 = max(0, int(math.floor(x0 + 0.5)))
        c1 = min(self.w, int(math.ceil(x1 - 0.5)))
        r0 = max(0, int(math.floor(y0 + 0.5)))
        r1 = min(self.h, int(math.ceil(y1 - 0.5)))
        if c1 <= c0 or r1 <= r0:
            return None
        return r0, r1, c0, c1

    def coords(self, win):
        r0, r1, c0, c1 = win
        yy = (np.arange(r0, r1, dtype=np.float32) + 0.5)[:, None]
        xx = (np.arange(c0, c1, dtype=np.float32) + 0.5)[None, :]
        return yy, xx

    # -- shapes: each returns (window, boolean mask over the window) or None

    def rect(self, x0, y0, x1, y1):
        win = self.window(x0, y0, x1, y1)
        if win is None:
            return None
        return win, None  # None: the whole window

    def ellipse(self, cx, cy, rx, ry):
        rx, ry = max(rx, 0.5), max(ry, 0.5)
        win = self.window(cx - rx, cy - ry, cx + rx, cy + ry)
        if win is None:
            return None
        yy, xx = self.coords(win)
        m = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        return (win, m) if m.any() else None

    def ring(self, cx, cy, r_out, r_in, squash=1.0):
        r_out = max(r_out, 0.6)
        rx = max(r_out * squash, 0.5)
        win = self.window(cx - rx, cy - r_out, cx + rx, cy + r_out)
        if win is None:
            return None
        yy, xx = self.coords(win)
        d = ((xx - cx) / max(squash, 1e-3)) ** 2 + (yy - cy) ** 2
        m = d <= r_out**2
        if r_in > 0.75:  # below that the hole is sub-pixel: a filled disc
            m &= d >= r_in**2
        return (win, m) if m.any() else None

    def polygon(self, pts):
        """Convex polygon (any winding)."""
        pts = np.asarray(pts, dtype=np.float32)
        win = self.window(pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
        if win is None:
            return None
        yy, xx = self.coords(win)
        n = len(pts)
        area = 0.0
        for i in range(n):
            (xa, ya), (xb, yb) = pts[i], pts[(i + 1) % n]
            area += xa * yb - xb * ya
        sign = 1.0 if area >= 0 else -1.0
        m = None
        for i in range(n):
            (xa, ya), (xb, yb) = pts[i], pts[(i + 1) % n]
            inside = sign * ((xb - xa) * (yy - ya) - (yb - ya) * (xx - xa)) >= 0
            m = inside if m is None else (m & inside)
        return (win, m) if m.any() else None

    def line(self, p0, p1, width):
        """Thick segment of ``width`` pixels (at least 1)."""
        width = max(width, 1.0)
        (xa, ya), (xb, yb) = p0, p1
        r = width / 2
        win = self.window(min(xa, xb) - r, min(ya, yb) - r, max(xa, xb) + r, max(ya, yb) + r)
        if win is None:
            return None
        yy, xx = self.coords(win)
        dx, dy = xb - xa, yb - ya
        L2 = dx * dx + dy * dy
        if L2 < 1e-9:
            t = np.zeros_like(xx + yy)
        else:
            t = np.clip(((xx - xa) * dx + (yy - ya) * dy) / L2, 0.0, 1.0)
        d2 = (xx - xa - t * dx) ** 2 + (yy - ya - t * dy) ** 2
        m = d2 <= r * r + 0.25 * (width <= 1.5)  # a 1-px line stays connected
        return (win, m) if m.any() else None

    # -- painting

    def paint(self, shape, cls, colour, depth, grain=6.0, shade=None, where=None):
        """Paint ``shape`` with class ``cls`` and ``colour`` (3-vector) plus grain.

        ``cls=None`` changes colours only (shadows, markings). ``where``:
        optional predicate on the existing labels (e.g. only on ground).
        """
        if shape is None:
            return
        (r0, r1, c0, c1), m = shape
        col = np.asarray(colour, dtype=np.float32)
        if m is None and where is None:  # a rectangle: plain slices, much cheaper
            pix = col + (grain * self.fine[r0:r1, c0:c1])[..., None]
            if shade is not None:
                pix *= shade
            self.img[r0:r1, c0:c1] = pix
            if cls is not None:
                self.label[r0:r1, c0:c1] = cls
                self.depth[r0:r1, c0:c1] = depth
            return
        if m is None:
            m = np.ones((r1 - r0, c1 - c0), dtype=bool)
        if where is not None:
            m = m & where(self.label[r0:r1, c0:c1])
        pix = col + (grain * self.fine[r0:r1, c0:c1][m])[:, None]
        if shade is not None:
            pix *= shade[m]
        self.img[r0:r1, c0:c1][m] = pix
        if cls is not None:
            self.label[r0:r1, c0:c1][m] = cls
            self.depth[r0:r1, c0:c1][m] = depth

    def darken(self, shape, factor, where):
        if shape is None:
            return
        (r0, r1, c0, c1), m = shape
        m = where(self.label[r0:r1, c0:c1]) if m is None else m & where(self.label[r0:r1, c0:c1])
        self.img[r0:r1, c0:c1][m] *= factor


def _pick(rng, table):
    return table[rng.integers(len(table))] * rng.uniform(0.85, 1.15, 3).astype(np.float32)


# --------------------------------------------------------------------------- the scene


class _Street:
    """Camera and street layout in metres; projection to pixels."""

    def __init__(self, rng, h, w):
        self.h, self.w = h, w
        self.f = min(w, h) * rng.uniform(0.8, 1.05)  # the same vertical view at any aspect ratio
        self.yh = h * rng.uniform(0.43, 0.55)
        self.xv = w * (0.5 + rng.uniform(-0.1, 0.1))
        self.cam = rng.uniform(1.3, 1.7)
        self.road_l = -rng.uniform(1.8, 5.0)
        self.road_r = rng.uniform(1.8, 5.0)
        self.pave_l = self.road_l - rng.uniform(2.0, 5.5)
        self.pave_r = self.road_r + rng.uniform(2.0, 5.5)
        self.z_end = rng.uniform(60.0, 220.0)
        # depth of the ground at the bottom row
        self.z_bottom = self.f * self.cam / max(h - self.yh, 1.0)

    def px(self, X, Y, z):
        """World (X right, Y up, z forward) -> image (x, y)."""
        return self.xv + self.f * X / z, self.yh + self.f * (self.cam - Y) / z

    def scale(self, z):
        return self.f / z


def _segments(rng, start, stop, length, height, gap_p, gap_len):
    """Consecutive segments along one axis, drawn in one go: boundaries
    (``len(heights) + 1``) and heights (0 = a gap; never two gaps in a row)."""
    n = int(math.ceil((stop - start) / length[0])) + 1
    L = rng.uniform(*length, n)
    hts = rng.uniform(*height, n)
    gap = rng.random(n) < gap_p
    gap[0] = False
    gap[1:] &= ~gap[:-1]
    L = np.where(gap, rng.uniform(*gap_len, n), L)
    hts = np.where(gap, 0.0, hts)
    edges = start + np.concatenate([[0.0], np.cumsum(L)])
    k = int(np.searchsorted(edges, stop, side="left"))  # edges[k] >= stop
    k = max(1, min(k, n))
    return edges[: k + 1].astype(np.float32), hts[:k].astype(np.float32)


def _lookup(edges, values, q):
    """Value of the segment holding q (values[-1] beyond the end, values[0] before)."""
    i = np.clip(np.searchsorted(edges, q, side="right") - 1, 0, len(values) - 1)
    return values[i], i


def generate_scene(seed: int, index: int, height: int = DEFAULT_SIZE[0], width: int = DEFAULT_SIZE[1]):
    """One street scene: ``(image HxWx3 uint8, mask HxW uint8)``, the same for the
    same ``(seed, index, height, width)``."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got {seed}, {index}")
    if height < 16 or width < 16:
        raise ValueError(f"scenes need at least 16x16 pixels, got {height}x{width}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    H, W = int(height), int(width)
    st = _Street(rng, H, W)
    cv = _Canvas(H, W, rng)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        light = _background(rng, st, cv)
    _objects(rng, st, cv, light)
    img = _finish(rng, st, cv, light)
    return img, cv.label


def _background(rng, st: _Street, cv: _Canvas) -> dict:
    """Ray-cast the static world. Surfaces are found per pixel on whole
    arrays; colours are then computed only at the pixels of each surface."""
    H, W = st.h, st.w
    xs = np.arange(W, dtype=np.float32) + 0.5
    ys = np.arange(H, dtype=np.float32) + 0.5
    dx = (xs - st.xv) / st.f  # (W,) ray slope sideways
    dy = (ys - st.yh) / st.f  # (H,) ray slope downwards
    INF = np.float32(np.inf)

    overcast = rng.random() < 0.35
    sun_side = -1 if rng.random() < 0.5 else 1  # the side whose facades cast shadows
    shadow_k = 0.0 if overcast else rng.uniform(0.2, 1.0)

    # --- facades (or tree lines) on each side, segmented along depth
    sides = {}
    for s, X in ((-1, st.pave_l), (1, st.pave_r)):
        trees = rng.random() < 0.15
        if trees:
            edges, hts = _segments(rng, 0.0, st.z_end, (4, 10), (4, 10), 0.05, (2, 4))
        else:
            edges, hts = _segments(rng, rng.uniform(-3, 3), st.z_end, (6, 22), (4, 17), 0.12, (3, 8))
        n = len(hts)
        sides[s] = dict(X=X, trees=trees, edges=edges, hts=hts,
                        colour=_FACADE_COLOURS[rng.integers(len(_FACADE_COLOURS), size=n)] * rng.uniform(0.85, 1.15, (n, 3)).astype(np.float32),
                        win=rng.random(n) < 0.85, pz=rng.uniform(2.0, 4.0, n).astype(np.float32),
                        floor=rng.uniform(2.8, 3.6, n).astype(np.float32),
                        wfrac=rng.uniform(0.35, 0.65, n).astype(np.float32),
                        hfrac=rng.uniform(0.35, 0.6, n).astype(np.float32),
                        glass=rng.uniform(25, 80, n).astype(np.float32))

    # --- the far end: buildings, trees or unlabelled stuff across the street
    end_edges, end_hts = _segments(rng, -300.0, 300.0, (6, 20), (6, 30), 0.0, (1, 2))
    ne = len(end_hts)
    end_kind = rng.random(ne)
    end_tree = end_kind < 0.25
    end_void = end_kind > 0.88  # construction, hoardings: void
    end_colour = _FACADE_COLOURS[rng.integers(len(_FACADE_COLOURS), size=ne)] * rng.uniform(0.85, 1.15, (ne, 3)).astype(np.float32)

    # --- first surface along each ray: 0 sky, 1 ground, 2 left, 3 right facade, 4 far end
    zg_row = np.full(H, INF, dtype=np.float32)
    down = dy > 0
    zg_row[down] = st.cam / dy[down]
    z_best = np.repeat(zg_row[:, None], W, axis=1)
    kind = np.repeat(np.where(down, 1, 0).astype(np.int8)[:, None], W, axis=1)

    face = {}
    for code, s in ((2, -1), (3, 1)):
        side = sides[s]
        cols = np.flatnonzero(dx * s > 0)
        zf = side["X"] / dx[cols]
        keep = zf < st.z_end
        cols, zf = cols[keep], zf[keep].astype(np.float32)
        if cols.size == 0:
            continue
        hz, seg = _lookup(side["edges"], side["hts"], zf)
        Y = st.cam - dy[:, None] * zf[None, :]
        lim = hz[None, :] + (1.5 * cv.med[:, cols] if side["trees"] else 0.0)
        hit = (Y >= 0) & (Y <= lim) & (zf[None, :] < z_best[:, cols])
        rr, cc = np.nonzero(hit)
        z_best[rr, cols[cc]] = zf[cc]
        kind[rr, cols[cc]] = code
        zcol = np.zeros(W, dtype=np.float32)
        scol = np.zeros(W, dtype=np.intp)
        zcol[cols], scol[cols] = zf, seg
        face[code] = (zcol, scol)

    Y_end = st.cam - dy * st.z_end  # (H,)
    X_end = dx * st.z_end  # (W,)
    h_end, seg_end = _lookup(end_edges, end_hts, X_end)
    lim = h_end[None, :] + np.where(end_tree[seg_end], 1.5, 0.0)[None, :] * cv.med
    hit = (Y_end[:, None] >= 0) & (Y_end[:, None] <= lim) & (z_best > st.z_end)
    z_best[hit] = st.z_end
    kind[hit] = 4

    lab = cv.label.reshape(-1)
    img = cv.img.reshape(-1, 3)
    fine, med, coarse = cv.fine.reshape(-1), cv.med.reshape(-1), cv.coarse.reshape(-1)
    kind_f = kind.reshape(-1)

    # --- sky: a vertical gradient, clouds
    idx = np.flatnonzero(kind_f == 0)
    if overcast:
        top = rng.uniform(150, 200) * np.array([1, 1.01, 1.05], dtype=np.float32)
        bottom = rng.uniform(195, 230) * np.array([1, 1, 1.02], dtype=np.float32)
        cloud = 6.0
    else:
        top = np.array([rng.uniform(50, 110), rng.uniform(100, 150), rng.uniform(180, 235)], dtype=np.float32)
        bottom = np.array([rng.uniform(160, 200), rng.uniform(185, 215), rng.uniform(215, 245)], dtype=np.float32)
        cloud = rng.uniform(0, 35)
    t = np.clip(ys[idx // W] / max(st.yh, 1.0), 0, 1)[:, None]
    img[idx] = top + (bottom - top) * t + (cloud * np.maximum(coarse[idx], 0) + 1.5 * fine[idx])[:, None]
    lab[idx] = SKY

    # --- ground: road with lane marks, kerb, paved pavement, cast shadows
    idx = np.flatnonzero(kind_f == 1)
    r, c = np.divmod(idx, W)
    z = zg_row[r]
    X = dx[c] * z
    px_m = z / st.f  # metres per pixel at the ground point
    on_road = (X >= st.road_l) & (X <= st.road_r)
    lab[idx] = np.where(on_road, ROAD, PAVEMENT)

    ri, Xr, zr, pr = idx[on_road], X[on_road], z[on_road], px_m[on_road]
    asphalt = rng.uniform(55, 115) * (1 + rng.uniform(-0.05, 0.05, 3)).astype(np.float32)
    col = asphalt + (5 * fine[ri] + 7 * coarse[ri])[:, None]
    half = np.maximum(0.08, 0.45 * pr)
    lane_x = rng.uniform(st.road_l + 1.5, st.road_r - 1.5) if st.road_r - st.road_l > 3.5 else 0.5 * (st.road_l + st.road_r)
    period, dash = rng.uniform(6, 12), rng.uniform(2, 4)
    mark = (np.abs(Xr - lane_x) < half) & (np.mod(zr, period) < dash)
    if rng.random() < 0.5:
        e = rng.uniform(0.2, 0.5)
        mark |= (np.abs(Xr - (st.road_l + e)) < half) | (np.abs(Xr - (st.road_r - e)) < half)
    if rng.random() < 0.15:  # zebra crossing
        z0 = rng.uniform(st.z_bottom, st.z_bottom + 15)
        mark |= (zr > z0) & (zr < z0 + 3.5) & (np.mod(Xr, 1.0) < 0.5)
    col[mark] = rng.uniform(170, 230) + 4 * fine[ri[mark]][:, None]
    img[ri] = col

    pi, Xp, zp, pp = idx[~on_road], X[~on_road], z[~on_road], px_m[~on_road]
    pave = rng.uniform(120, 185) * (np.array([1.0, 0.98, 0.93], dtype=np.float32) + rng.uniform(-0.05, 0.05, 3).astype(np.float32))
    tile = rng.uniform(0.4, 1.0)
    lw = np.maximum(0.04, 0.5 * pp)
    joints = (np.mod(Xp, tile) < lw) | (np.mod(zp, tile) < lw)
    col = pave + (4 * fine[pi] + 6 * med[pi] - 22 * joints)[:, None]
    kerb = np.minimum(np.abs(Xp - st.road_l), np.abs(Xp - st.road_r)) < np.maximum(0.25, 0.6 * pp)
    col[kerb] = pave * rng.uniform(1.05, 1.25) + 3 * fine[pi[kerb]][:, None]
    img[pi] = col

    if shadow_k > 0:  # shadows of the sun-side facades on the ground
        side = sides[sun_side]
        hz, _ = _lookup(side["edges"], side["hts"], z)
        if side["trees"]:
            hz = hz * 0.6
        lateral = (X - side["X"]) * -sun_side  # distance from the facade towards the street
        sh = idx[(lateral >= 0) & (lateral < shadow_k * hz)]
        img[sh] *= rng.uniform(0.45, 0.65) * np.array([0.95, 0.98, 1.08], dtype=np.float32)

    # --- facades: per-building colour, windows on a perspective grid, sun or shade
    for code, s in ((2, -1), (3, 1)):
        idx = np.flatnonzero(kind_f == code)
        if idx.size == 0:
            continue
        side = sides[s]
        zcol, scol = face[code]
        r, c = np.divmod(idx, W)
        sun = s != sun_side and not overcast
        gain = rng.uniform(1.0, 1.2) if sun else rng.uniform(0.6, 0.85)
        if side["trees"]:
            lab[idx] = TREE
            img[idx] = _leaf_colour(_tree_base(rng), fine[idx], med[idx]) * gain
            continue
        lab[idx] = BUILDING
        zf, seg = zcol[c], scol[c]
        Y = st.cam - dy[r] * zf
        pz, fl = side["pz"][seg], side["floor"][seg]
        u = np.mod(zf - side["edges"][seg], pz) / pz
        v = np.mod(Y, fl) / fl
        win = side["win"][seg] & (u < side["wfrac"][seg]) & (v > 0.3) & (v < 0.3 + side["hfrac"][seg]) & (Y > 1.0)
        col = side["colour"][seg] * gain
        wi = np.flatnonzero(win)
        col[wi] = side["glass"][seg[wi]][:, None] * np.array([0.9, 0.95, 1.1], dtype=np.float32) + (25 * (1 - v[wi]))[:, None]
        img[idx] = col + (5 * fine[idx] + 6 * med[idx])[:, None]

    # --- far end
    idx = np.flatnonzero(kind_f == 4)
    if idx.size:
        r, c = np.divmod(idx, W)
        seg = seg_end[c]
        tr, vo = end_tree[seg], end_void[seg]
        lab[idx] = np.where(tr, TREE, np.where(vo, VOID, BUILDING))
        Xe, Ye = X_end[c], Y_end[r]
        win = (np.mod(Xe, 3.0) < 1.4) & (np.mod(Ye, 3.2) > 1.0) & (np.mod(Ye, 3.2) < 2.2) & ~tr & ~vo
        col = end_colour[seg] + (5 * fine[idx] + 10 * vo * med[idx])[:, None]
        col[win] = 55.0 + 5 * fine[idx[win]][:, None]
        if tr.any():
            col[tr] = _leaf_colour(_tree_base(rng), fine[idx[tr]], med[idx[tr]])
        img[idx] = col

    z_best[kind == 0] = 0.0  # no haze on the sky itself
    cv.depth[:] = z_best
    return dict(overcast=overcast, sun_side=sun_side, shadow_k=shadow_k, horizon=bottom, sides=sides)


def _tree_base(rng) -> np.ndarray:
    if rng.random() < 0.12:  # autumn
        return np.array([rng.uniform(120, 170), rng.uniform(100, 140), rng.uniform(30, 60)], dtype=np.float32)
    return np.array([rng.uniform(40, 95), rng.uniform(80, 140), rng.uniform(25, 65)], dtype=np.float32)


_LEAF_TINT = np.array([0.5, 0.8, 0.3], dtype=np.float32)


def _leaf_colour(base, fine, med) -> np.ndarray:
    """Foliage: a green base with strong grain at two scales (any array shape)."""
    leaves = 16 * fine + 22 * med
    return base * (1 + 0.004 * leaves)[..., None] + leaves[..., None] * _LEAF_TINT


# --------------------------------------------------------------------------- objects


def _objects(rng, st: _Street, cv: _Canvas, light: dict) -> None:
    items: list[tuple[float, callable]] = []
    z_near = max(st.z_bottom * 0.75, 2.0)

    def depth_draw(zmax=70.0):
        return float(np.exp(rng.uniform(np.log(z_near), np.log(zmax))))

    # fences along the back of the pavement or the road edge (drawn first)
    for _ in range(rng.poisson(0.6)):
        s = -1 if rng.random() < 0.5 else 1
        X = (st.pave_l + 0.15 if s < 0 else st.pave_r - 0.15) if rng.random() < 0.6 else (st.road_l - 0.3 if s < 0 else st.road_r + 0.3)
        z0 = rng.uniform(z_near, 25)
        _fence(rng, st, cv, X, z0, z0 + rng.uniform(10, 50), rng.uniform(1.0, 1.8))

    # parked cars in rows along the road edges, and moving cars in the lanes
    for s in (-1, 1):
        if rng.random() < 0.6:
            z = rng.uniform(z_near, 15)
            while z < min(70.0, st.f):  # beyond, a car is a pixel or two
                if rng.random() < 0.5:
                    w = rng.uniform(1.65, 1.9)
                    Xc = st.road_l + w / 2 + 0.2 if s < 0 else st.road_r - w / 2 - 0.2
                    items.append((z, _car_fn(rng, st, cv, Xc, z, w)))
                z += rng.uniform(5.0, 7.5)
    for _ in range(rng.poisson(1.0)):
        w = rng.uniform(1.65, 1.9)
        Xc = rng.uniform(st.road_l + w / 2, st.road_r - w / 2) if st.road_r - st.road_l > w else 0.0
        z = depth_draw(60)
        if abs(Xc) < 1.2:
            z = max(z, st.z_bottom * 1.5 + 4)  # not straddling the camera's own lane up close
        items.append((z, _car_fn(rng, st, cv, Xc, z, w)))

    # pedestrians on the pavements (some crossing)
    for _ in range(rng.poisson(2.2) if rng.random() < 0.8 else 0):
        if rng.random() < 0.88:
            X = rng.uniform(st.pave_l + 0.3, st.road_l - 0.3) if rng.random() < 0.5 else rng.uniform(st.road_r + 0.3, st.pave_r - 0.3)
        else:
            X = rng.uniform(st.road_l, st.road_r)
        z = max(depth_draw(50), 4.0)
        items.append((z, _pedestrian_fn(rng, st, cv, X, z)))

    # bicyclists: rare
    if rng.random() < P_BICYCLIST:
        for _ in range(1 if rng.random() < 0.8 else 2):
            X = st.road_l + rng.uniform(0.6, 1.2) if rng.random() < 0.5 else st.road_r - rng.uniform(0.6, 1.2)
            z = float(np.exp(rng.uniform(np.log(max(z_near * 1.3, 3.0)), np.log(25.0))))
            items.append((z, _bicyclist_fn(rng, st, cv, X, z)))

    # street lamps (poles) with signs and traffic lights, plus sign posts
    for s in (-1, 1):
        if rng.random() < 0.6:
            X = st.road_l - rng.uniform(0.3, 0.8) if s < 0 else st.road_r + rng.uniform(0.3, 0.8)
            z, step = rng.uniform(z_near, 20), rng.uniform(15, 35)
            while z < 80:
                items.append((z, _pole_fn(rng, st, cv, X, z, s, rng.uniform(4.5, 8.0), lamp=True, sign_p=0.5)))
                z += step
    for _ in range(rng.poisson(1.8)):
        s = -1 if rng.random() < 0.5 else 1
        X = st.road_l - rng.uniform(0.3, 1.0) if s < 0 else st.road_r + rng.uniform(0.3, 1.0)
        z = max(depth_draw(60), 7.0)  # signs stay small
        items.append((z, _pole_fn(rng, st, cv, X, z, s, rng.uniform(2.3, 3.2), lamp=False, sign_p=1.0)))

    # trees on the pavements
    for s in (-1, 1):
        if rng.random() < 0.5:
            edge = st.road_l if s < 0 else st.road_r
            z, step = rng.uniform(z_near, 15), rng.uniform(7, 16)
            while z < 70:
                X = edge + s * rng.uniform(0.8, 1.6)
                items.append((z, _tree_fn(rng, st, cv, X, z)))
                z += step * rng.uniform(0.8, 1.2)

    # void clutter (bins, boxes, bollards) on the pavements
    for _ in range(rng.poisson(2.0)):
        X = rng.uniform(st.pave_l + 0.3, st.road_l) if rng.random() < 0.5 else rng.uniform(st.road_r, st.pave_r - 0.3)
        z = max(depth_draw(50), 5.0)
        items.append((z, _clutter_fn(rng, st, cv, X, z)))

    items.sort(key=lambda it: -it[0])
    for _, draw in items:
        draw()

    # the ego vehicle's hood, sometimes
    if rng.random() < 0.2:
        H, W = st.h, st.w
        hood = rng.uniform(0.05, 0.12) * H
        yy, xx = _grid(H, W)
        curve = H - hood * (1 - 0.5 * ((xx - W / 2) / (0.6 * W)) ** 2)
        m = np.broadcast_to(yy >= curve, (H, W))
        cv.label[m] = VOID
        c = rng.uniform(20, 90) * np.ones(3, dtype=np.float32) + 20 * np.clip(1 - (yy - curve) / hood, 0, 1)[..., None]
        cv.img[m] = np.broadcast_to(c, (H, W, 3))[m]
        cv.depth[m] = 1.0


def _fence(rng, st, cv, X, z0, z1, h):
    z0 = max(z0, 0.5)
    pts = [st.px(X, 0, z0), st.px(X, h, z0), st.px(X, h, z1), st.px(X, 0, z1)]
    shape = cv.polygon(pts)
    if shape is None:
        return
    wood = rng.random() < 0.5
    base = np.array([rng.uniform(100, 150), rng.uniform(75, 105), rng.uniform(45, 70)], dtype=np.float32) if wood else _pick(rng, np.array([[120, 125, 125], [60, 90, 60], [40, 40, 45]], dtype=np.float32))
    (r0, r1, c0, c1), m = shape
    yy, xx = cv.coords((r0, r1, c0, c1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.abs(xx - st.xv) > 0.5, st.f * X / (xx - st.xv), z1)
    period = rng.uniform(0.12, 0.3)
    slat = (np.mod(z, period) < period * 0.55).astype(np.float32)
    shade = np.broadcast_to((0.7 + 0.4 * slat)[..., None], m.shape + (1,))
    cv.paint(shape, FENCE, base, float(z0), grain=8.0, shade=shade)


def _car_fn(rng, st, cv, Xc, z, w):
    h = rng.uniform(1.35, 1.6)
    L = rng.uniform(3.9, 4.8)
    colour = _pick(rng, _CAR_COLOURS)
    glass = np.array([35, 40, 50], dtype=np.float32) * rng.uniform(0.7, 1.4)
    dark = np.array([22, 22, 24], dtype=np.float32)

    def draw():
        if z < 0.8:
            return
        s = st.scale(z)
        Xs = Xc - w / 2 if Xc - w / 2 > 0 else (Xc + w / 2 if Xc + w / 2 < 0 else None)
        if h * s < 10:  # a few pixels tall: side, body, a dark glass band and wheels
            x0, yb = st.px(Xc - w / 2, 0.0, z)
            x1, _ = st.px(Xc + w / 2, 0.0, z)
            if Xs is not None and h * s >= 3:
                cv.paint(cv.polygon([st.px(Xs, 0.1 * h, z), st.px(Xs, 0.8 * h, z), st.px(Xs, 0.8 * h, z + L), st.px(Xs, 0.1 * h, z + L)]),
                         CAR, colour * 0.85, z)
            cv.paint(cv.rect(x0, yb - h * s, x1, yb), CAR, colour, z)
            cv.paint(cv.rect(x0 + 0.15 * w * s, yb - h * s, x1 - 0.15 * w * s, yb - 0.62 * h * s), CAR, glass, z)
            if h * s >= 5:
                cv.paint(cv.rect(x0, yb - 0.22 * s, x1, yb), CAR, dark, z, grain=3)
            return
        ground = lambda lab: (lab == ROAD) | (lab == PAVEMENT)  # noqa: E731
        # contact shadow on the ground
        cv.darken(cv.polygon([st.px(Xc - w / 2 - 0.1, 0, z - 0.2), st.px(Xc + w / 2 + 0.1, 0, z - 0.2),
                              st.px(Xc + w / 2 + 0.1, 0, z + L), st.px(Xc - w / 2 - 0.1, 0, z + L)]), 0.45, ground)
        # the visible side
        if Xs is not None:
            foreshort = abs(Xs) / math.hypot(Xs, z + L / 2)
            cv.paint(cv.polygon([st.px(Xs, 0.15 * h, z), st.px(Xs, 0.62 * h, z), st.px(Xs, 0.62 * h, z + L), st.px(Xs, 0.15 * h, z + L)]),
                     CAR, colour * 0.85, z)
            cv.paint(cv.polygon([st.px(Xs, 0.62 * h, z + 0.12 * L), st.px(Xs, h, z + 0.3 * L), st.px(Xs, h, z + 0.75 * L), st.px(Xs, 0.62 * h, z + 0.9 * L)]),
                     CAR, glass, z)
            for zw in (z + 0.18 * L, z + 0.82 * L):
                x, y = st.px(Xs, 0.32, zw)
                r = 0.32 * st.scale(zw)
                cv.paint(cv.ellipse(x, y, r * max(foreshort, 0.25), r), CAR, dark, z)
        # roof, seen from above when the camera is higher than the car
        if st.cam > h + 0.05:
            cv.paint(cv.polygon([st.px(Xc - 0.38 * w, h, z + 0.3 * L), st.px(Xc + 0.38 * w, h, z + 0.3 * L),
                                 st.px(Xc + 0.38 * w, h, z + 0.75 * L), st.px(Xc - 0.38 * w, h, z + 0.75 * L)]), CAR, colour * 1.05, z)
        # the near face: wheels, bumper, body, cabin with glass, lights
        x0, yb = st.px(Xc - w / 2, 0.0, z)
        x1, _ = st.px(Xc + w / 2, 0.0, z)
        wh = 0.2 * w * s
        cv.paint(cv.rect(x0 + 0.04 * w * s, yb - 0.2 * s, x0 + 0.04 * w * s + wh, yb), CAR, dark, z, grain=3)
        cv.paint(cv.rect(x1 - 0.04 * w * s - wh, yb - 0.2 * s, x1 - 0.04 * w * s, yb), CAR, dark, z, grain=3)
        cv.paint(cv.rect(x0, yb - 0.62 * h * s, x1, yb - 0.15 * h * s), CAR, colour, z)
        cv.paint(cv.rect(x0, yb - 0.25 * h * s, x1, yb - 0.15 * h * s), CAR, dark * 1.5, z, grain=3)
        inset_b, inset_t = 0.05 * w * s, 0.16 * w * s
        yt, ym = yb - h * s, yb - 0.62 * h * s
        cv.paint(cv.polygon([(x0 + inset_b, ym), (x0 + inset_t, yt), (x1 - inset_t, yt), (x1 - inset_b, ym)]), CAR, colour * 0.95, z)
        gi = 0.07 * w * s
        cv.paint(cv.polygon([(x0 + inset_b + gi, ym - 0.04 * h * s), (x0 + inset_t + gi, yt + 0.08 * h * s),
                             (x1 - inset_t - gi, yt + 0.08 * h * s), (x1 - inset_b - gi, ym - 0.04 * h * s)]), CAR, glass, z)
        lamp = np.array([200, 30, 30], dtype=np.float32) if rng.random() < 0.7 else np.array([235, 225, 190], dtype=np.float32)
        lw, lh = 0.16 * w * s, 0.08 * h * s
        cv.paint(cv.rect(x0 + 0.03 * w * s, ym + 0.06 * h * s, x0 + 0.03 * w * s + lw, ym + 0.06 * h * s + lh), CAR, lamp, z, grain=3)
        cv.paint(cv.rect(x1 - 0.03 * w * s - lw, ym + 0.06 * h * s, x1 - 0.03 * w * s, ym + 0.06 * h * s + lh), CAR, lamp, z, grain=3)

    return draw


def _pedestrian_fn(rng, st, cv, X, z):
    h = rng.uniform(1.5, 1.9)
    wide = rng.uniform(0.42, 0.56)
    legs_c = _pick(rng, _CLOTHES[[0, 1, 5, 6, 3]])
    top_c = _pick(rng, _CLOTHES)
    skin = _pick(rng, _SKIN)
    hair = np.array([30, 25, 20], dtype=np.float32) * rng.uniform(0.8, 2.5)
    stride = rng.uniform(0.0, 0.25)

    def draw():
        if z < 0.8:
            return
        s = st.scale(z)
        x, yb = st.px(X, 0.0, z)
        if h * s < 6:  # a few pixels tall: legs and a body
            cv.paint(cv.rect(x - 0.12 * h * s, yb - 0.47 * h * s, x + 0.12 * h * s, yb), PEDESTRIAN, legs_c, z)
            cv.paint(cv.ellipse(x, yb - 0.72 * h * s, wide * s / 2, 0.28 * h * s), PEDESTRIAN, top_c, z)
            return
        leg_w = max(0.13 * h * s, 0.6)
        for d in (-1, 1):
            cv.paint(cv.line((x + d * 0.06 * h * s, yb - 0.46 * h * s), (x + d * (0.06 + stride) * h * s * 0.5, yb - 0.5), leg_w),
                     PEDESTRIAN, legs_c, z)
        cv.paint(cv.ellipse(x, yb - 0.64 * h * s, wide * s / 2, 0.2 * h * s), PEDESTRIAN, top_c, z)
        for d in (-1, 1):
            cv.paint(cv.line((x + d * wide * s * 0.45, yb - 0.8 * h * s), (x + d * wide * s * 0.55, yb - 0.5 * h * s), 0.07 * h * s),
                     PEDESTRIAN, top_c * 0.9, z)
        cv.paint(cv.ellipse(x, yb - 0.9 * h * s, 0.065 * h * s, 0.075 * h * s), PEDESTRIAN, skin, z, grain=4)
        cv.paint(cv.ellipse(x, yb - 0.94 * h * s, 0.066 * h * s, 0.04 * h * s), PEDESTRIAN, hair, z, grain=4)

    return draw


def _bicyclist_fn(rng, st, cv, X, z):
    facing = -1 if rng.random() < 0.5 else 1
    frame_c = _pick(rng, _CLOTHES)
    rider_c = _pick(rng, _CLOTHES)
    legs_c = _pick(rng, _CLOTHES[[0, 1, 6]])
    skin = _pick(rng, _SKIN)
    dark = np.array([25, 25, 28], dtype=np.float32)

    def draw():
        if z < 1.0:
            return
        s = st.scale(z)
        x, yb = st.px(X, 0.0, z)
        P = lambda u, v: (x + facing * u * s, yb - v * s)  # noqa: E731  side view, metres
        for u in (-0.52, 0.52):
            cx, cy = P(u, 0.34)
            cv.paint(cv.ring(cx, cy, 0.34 * s, 0.27 * s), BICYCLIST, dark, z, grain=3)
        t = max(0.05 * s, 1.0)
        for a, b in (((-0.52, 0.34), (0.0, 0.34)), ((0.0, 0.34), (-0.12, 0.85)), ((0.0, 0.34), (0.42, 0.85)),
                     ((-0.12, 0.85), (0.42, 0.85)), ((0.42, 0.85), (0.52, 0.34)), ((0.42, 0.85), (0.40, 1.0))):
            cv.paint(cv.line(P(*a), P(*b), t), BICYCLIST, frame_c, z, grain=3)
        cv.paint(cv.line(P(-0.1, 0.95), P(0.05, 0.35), 0.14 * s), BICYCLIST, legs_c, z)
        cv.paint(cv.line(P(-0.1, 0.95), P(0.18, 1.5), 0.3 * s), BICYCLIST, rider_c, z)
        cv.paint(cv.line(P(0.2, 1.45), P(0.4, 1.0), 0.08 * s), BICYCLIST, rider_c * 0.9, z)
        cx, cy = P(0.26, 1.68)
        cv.paint(cv.ellipse(cx, cy, 0.11 * s, 0.12 * s), BICYCLIST, skin, z, grain=3)

    return draw


def _pole_fn(rng, st, cv, X, z, side, height, lamp, sign_p=0.35):
    metal = _pick(rng, np.array([[120, 122, 125], [70, 72, 75], [40, 60, 45], [35, 35, 38], [160, 160, 155]], dtype=np.float32))
    width_m = rng.uniform(0.12, 0.3)
    has_sign = rng.random() < sign_p and z >= 7.0  # signs stay small
    traffic_light = lamp and not has_sign and rng.random() < 0.15
    sign_kind = rng.integers(4)
    sign_c = _pick(rng, np.array([[200, 30, 35], [30, 70, 170], [235, 235, 230], [225, 190, 30]], dtype=np.float32))
    sign_m = rng.uniform(0.6, 1.0)
    sign_y = rng.uniform(2.0, 2.8) if height > 3.5 else height - 0.35
    cap = max(3, round(3 * st.w / 160))  # poles 1-3 px wide at the default sizes

    def draw():
        if z < 0.8:
            return
        s = st.scale(z)
        x, yb = st.px(X, 0.0, z)
        _, yt = st.px(X, height, z)
        wpx = int(min(max(round(width_m * s), 1), cap))
        xl = round(x - wpx / 2)
        cv.paint(cv.rect(xl, yt, xl + wpx, yb), POLE, metal, z, grain=4)
        if lamp:  # the arm over the road and the lamp head
            xa, ya = st.px(X - side * 1.6, height, z)
            cv.paint(cv.line((x, yt), (xa, ya), 1.0), POLE, metal, z, grain=3)
            cv.paint(cv.rect(xa - 0.2 * s, ya, xa + 0.2 * s, ya + max(0.12 * s, 1)), POLE, metal * 1.3, z, grain=3)
        if has_sign:
            cx, cy = st.px(X - side * 0.1, sign_y + sign_m / 2, z)
            r = sign_m * s / 2
            if sign_kind == 0:
                cv.paint(cv.ellipse(cx, cy, r, r), SIGN, sign_c, z, grain=4)
                cv.paint(cv.ellipse(cx, cy, r * 0.6, r * 0.6), SIGN, np.array([235, 235, 235], np.float32), z, grain=4)
            elif sign_kind == 1:
                cv.paint(cv.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)]), SIGN, sign_c, z, grain=4)
            else:
                cv.paint(cv.rect(cx - r, cy - r * 0.75, cx + r, cy + r * 0.75), SIGN, sign_c, z, grain=4)
                cv.paint(cv.rect(cx - r * 0.6, cy - r * 0.3, cx + r * 0.6, cy + r * 0.3), SIGN, sign_c * 0.6 + 90, z, grain=4)
        if traffic_light:
            cx, cy = st.px(X - side * 0.2, height - 0.6, z)
            bw, bh = max(0.35 * s, 1.0), max(0.9 * s, 2.0)
            cv.paint(cv.rect(cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), SIGN, np.array([30, 30, 30], np.float32), z, grain=3)
            lc = np.array([[230, 40, 30], [240, 180, 30], [40, 220, 90]], np.float32)[rng.integers(3)]
            cv.paint(cv.ellipse(cx, cy - bh * 0.25, bw * 0.35, bw * 0.35), SIGN, lc, z, grain=3)

    return draw


def _tree_fn(rng, st, cv, X, z):
    trunk_h = rng.uniform(1.8, 3.0)
    trunk_w = rng.uniform(0.2, 0.4)
    crown_y = trunk_h + rng.uniform(1.2, 2.5)
    nb = int(rng.integers(3, 6))
    blobs = np.stack([rng.uniform(-1.2, 1.2, nb), crown_y + rng.uniform(-0.8, 1.5, nb),
                      rng.uniform(1.0, 2.2, nb), rng.uniform(1.0, 2.0, nb)], axis=1).astype(np.float32)
    bark = np.array([rng.uniform(60, 100), rng.uniform(45, 70), rng.uniform(30, 50)], dtype=np.float32)
    tone = rng.uniform(0.75, 1.2)

    def draw():
        if z < 1.0:
            return
        s = st.scale(z)
        x, yb = st.px(X, 0.0, z)
        _, yt = st.px(X, trunk_h + 0.8, z)
        wpx = max(trunk_w * s, 1.0)
        cv.paint(cv.rect(x - wpx / 2, yt, x + wpx / 2, yb), TREE, bark, z, grain=6)
        if cv.tree_base is None:
            cv.tree_base = _tree_base(rng)
        top = st.px(X, crown_y + 2.5, z)[1]
        span = max(5.0 * s, 1e-3)
        cx = st.xv + st.f * (X + blobs[:, 0]) / z
        cy = st.yh + st.f * (st.cam - blobs[:, 1]) / z
        rx, ry = np.maximum(blobs[:, 2] * s, 0.5), np.maximum(blobs[:, 3] * s, 0.5)
        win = cv.window((cx - rx).min(), (cy - ry).min(), (cx + rx).max(), (cy + ry).max())
        if win is not None:
            r0, r1, c0, c1 = win
            yy, xx = cv.coords(win)
            m = (((xx[None] - cx[:, None, None]) / rx[:, None, None]) ** 2
                 + ((yy[None] - cy[:, None, None]) / ry[:, None, None]) ** 2 <= 1.0).any(axis=0)
            rows = np.nonzero(m)[0]
            shade = (1.15 - 0.35 * np.clip((rows + r0 + 0.5 - top) / span, 0, 1)) * tone
            pix = _leaf_colour(cv.tree_base, cv.fine[r0:r1, c0:c1][m], cv.med[r0:r1, c0:c1][m]) * shade[:, None]
            cv.img[r0:r1, c0:c1][m] = pix
            cv.label[r0:r1, c0:c1][m] = TREE
            cv.depth[r0:r1, c0:c1][m] = z

    return draw


def _clutter_fn(rng, st, cv, X, z):
    w = rng.uniform(0.4, 1.6)
    h = rng.uniform(0.6, 1.6)
    colour = rng.uniform(20, 230, 3).astype(np.float32)

    def draw():
        if z < 1.0:
            return
        x0, yb = st.px(X - w / 2, 0.0, z)
        x1, yt = st.px(X + w / 2, h, z)
        cv.paint(cv.rect(x0, yt, x1, yb), VOID, colour, z, grain=8)

    return draw


# --------------------------------------------------------------------------- finishing


def _finish(rng, st, cv: _Canvas, light: dict) -> np.ndarray:
    """Haze, exposure, white balance, vignetting, gamma and sensor noise."""
    H, W = st.h, st.w
    fog = -np.expm1(cv.depth * np.float32(-1.0 / rng.uniform(120, 500)))[..., None]
    img = cv.img
    img += (light["horizon"] - img) * fog
    gain = rng.uniform(0.75, 1.2) * (0.85 if light["overcast"] else 1.0)
    wb = (gain * (1 + rng.uniform(-0.08, 0.08, 3))).astype(np.float32)
    yy, xx = _grid(H, W)
    vig = 1 - rng.uniform(0, 0.25) * 2 * (((xx - W / 2) / W) ** 2 + ((yy - H / 2) / H) ** 2)
    img *= vig[..., None] * wb
    gamma_lut = (255.0 * (np.arange(256, dtype=np.float32) / 255.0) ** rng.uniform(0.85, 1.15)).astype(np.float32)
    np.clip(img, 0, 255, out=img)
    out = gamma_lut[img.astype(np.uint8)]
    out += (rng.uniform(2.0, 7.0) * rng.standard_normal((H, W), dtype=np.float32))[..., None]
    out += 0.5
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


# --------------------------------------------------------------------------- writing


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(arr: np.ndarray, level: int = 1) -> bytes:
    """8-bit grey (HxW) or RGB (HxWx3) PNG bytes. Plain zlib: about twice as
    fast as PIL for small images, and no torch import."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape[:2]
    colour_type = 0 if arr.ndim == 2 else 2
    rows = np.empty((h, 1 + arr[0].size), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None
    rows[:, 1:] = arr.reshape(h, -1)
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)),
        _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)),
        _png_chunk(b"IEND", b""),
    ])


def _encode_png(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(encode_png(arr))


def _write_pair(img_path: Path, img: np.ndarray, mask_path: Path, mask: np.ndarray) -> None:
    _encode_png(img_path, img)
    _encode_png(mask_path, mask)


def write_synthetic(
    root,
    seed: int = 0,
    height: int = DEFAULT_SIZE[0],
    width: int = DEFAULT_SIZE[1],
    n_train: int = 367,
    n_val: int = 101,
    n_test: int = 233,
    progress: bool = False,
) -> dict:
    """Write ``n_train/n_val/n_test`` scenes in the CamVid SegNet layout at
    ``root`` (``train/``, ``trainannot/``, ...; files ``synth_00000.png``) plus
    ``synthetic.json`` with the parameters. Split ``s``, file ``i`` is scene
    ``SPLIT_OFFSETS[s] + i``. The folder is built under a temporary name
    beside ``root`` and renamed into place, replacing an older ``root``.
    Returns the metadata written (with the measured ``images_per_s``)."""
    root = Path(root)
    counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
    if any(n < 0 for n in counts.values()):
        raise ValueError(f"split sizes must be >= 0, got {counts}")
    root.parent.mkdir(parents=True, exist_ok=True)
    # .<name>.<pid>-<random>.tmp: what the stages remove when the writer was killed
    tmp = root.parent / f".{root.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    t0 = time.perf_counter()
    try:
        tmp.mkdir()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=sum(counts.values()), desc="synthetic scenes", unit="img", disable=None)
        # PNG encoding (zlib) and file writes release the GIL: two writer
        # threads overlap them with the drawing of the next scenes.
        from concurrent.futures import ThreadPoolExecutor

        pending = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            for split, n in counts.items():
                if n == 0:
                    continue
                (tmp / split).mkdir()
                (tmp / f"{split}annot").mkdir()
                for i in range(n):
                    img, mask = generate_scene(seed, SPLIT_OFFSETS[split] + i, height, width)
                    name = f"synth_{i:05d}.png"
                    pending.append(pool.submit(_write_pair, tmp / split / name, img, tmp / f"{split}annot" / name, mask))
                    if len(pending) > 64:  # bounded memory; surfaces write errors early
                        pending.pop(0).result()
                    if bar is not None:
                        bar.update(1)
            for f in pending:
                f.result()
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - t0
        meta = {
            "generator": "deal.data.synthetic",
            "seed": int(seed),
            "height": int(height),
            "width": int(width),
            "counts": counts,
            "split_offsets": SPLIT_OFFSETS,
            "info": SYNTHETIC_INFO.to_dict(),
        }
        (tmp / "synthetic.json").write_text(json.dumps(meta, indent=2) + "\n")
        old = None
        if root.exists():
            old = root.parent / f".{root.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}old.tmp"
            os.replace(root, old)
        os.replace(tmp, root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    total = sum(counts.values())
    return dict(meta, seconds=elapsed, images_per_s=total / elapsed if elapsed > 0 else float("inf"))


class SyntheticStreets(CamVid):
    """A folder written by ``write_synthetic``: CamVid layout, synthetic info."""

    def __init__(self, root, test_split: str = "test"):
        super().__init__(root, test_split=test_split, info=SYNTHETIC_INFO)


# --------------------------------------------------------------------------- figure / CLI


def class_shares(masks) -> np.ndarray:
    """Pixel share of each of the 12 values (11 classes + void) over ``masks``."""
    counts = np.zeros(12, dtype=np.int64)
    for m in masks:
        counts += np.bincount(np.asarray(m).ravel(), minlength=12)[:12]
    return counts / max(counts.sum(), 1)


def save_figure(path, seed: int = 0, n: int = 6, height: int = 96, width: int = 128, indices=None) -> None:
    """A figure of ``n`` scenes (image above, mask in the CamVid palette below)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    indices = list(indices) if indices is not None else list(range(n))
    fig, axes = plt.subplots(2, len(indices), figsize=(2.3 * len(indices), 4.0), squeeze=False)
    for j, idx in enumerate(indices):
        img, mask = generate_scene(seed, idx, height, width)
        axes[0, j].imshow(img, interpolation="nearest")
        axes[1, j].imshow(SYNTHETIC_INFO.colorize(mask), interpolation="nearest")
        axes[0, j].set_title(f"seed {seed}, #{idx}", fontsize=8)
        for a in axes[:, j]:
            a.set_axis_off()
    handles = [Patch(color=np.array(c) / 255, label=nm) for nm, c in zip(SYNTHETIC_INFO.class_names, SYNTHETIC_INFO.palette)]
    handles.append(Patch(color=np.array(SYNTHETIC_INFO.void_color) / 255, label="void"))
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def bench(height: int, width: int, n: int = 200, seed: int = 0) -> dict:
    """Generator-only and generate+PNG-write speed, images/s."""
    import tempfile

    t = time.perf_counter()
    for i in range(n):
        generate_scene(seed, i, height, width)
    gen = n / (time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as d:
        meta = write_synthetic(Path(d) / "s", seed, height, width, n, 0, 0)
    return {"height": height, "width": width, "n": n, "generate_per_s": gen, "write_per_s": meta["images_per_s"]}


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m deal.data.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("--figure", type=Path, help="write a figure of samples to this PNG")
    p.add_argument("--write", type=Path, help="write a dataset (CamVid layout) to this folder")
    p.add_argument("--bench", action="store_true", help="print the generator speed")
    p.add_argument("--stats", type=int, metavar="N", help="print class pixel shares over N scenes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--n", type=int, default=6, help="samples in the figure")
    p.add_argument("--indices", type=int, nargs="+", help="scene indices in the figure (default 0..n-1)")
    p.add_argument("--counts", type=int, nargs=3, default=(367, 101, 233), metavar=("TRAIN", "VAL", "TEST"))
    a = p.parse_args(argv)
    if a.figure:
        save_figure(a.figure, a.seed, a.n, a.height or 96, a.width or 128, indices=a.indices)
        print(f"wrote {a.figure}")
    if a.write:
        meta = write_synthetic(a.write, a.seed, a.height or DEFAULT_SIZE[0], a.width or DEFAULT_SIZE[1], *a.counts, progress=True)
        print(f"wrote {a.write}: {sum(a.counts)} scenes at {meta['images_per_s']:.0f} images/s")
    if a.stats:
        h, w = a.height or DEFAULT_SIZE[0], a.width or DEFAULT_SIZE[1]
        masks = [generate_scene(a.seed, i, h, w)[1] for i in range(a.stats)]
        names = list(SYNTHETIC_INFO.class_names) + ["void"]
        for k in np.argsort(-class_shares(masks)):
            print(f"{names[k]:<12} {100 * class_shares(masks)[k]:5.1f}%")
    if a.bench:
        sizes = [(a.height, a.width)] if a.height and a.width else [(64, 64), (96, 128), (360, 480)]
        for h, w in sizes:
            r = bench(h, w, n=200 if h * w <= 96 * 128 else 40, seed=a.seed)
            print(f"{h}x{w}: generate {r['generate_per_s']:.0f} images/s, generate+write PNG {r['write_per_s']:.0f} images/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
