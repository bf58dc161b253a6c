"""The drawing layer the scene and its objects share: the class indices,
value noise, ``_Canvas`` (label, colour and depth buffers with vectorised
shape painting) and ``_Street`` (the camera and street layout, projecting
metres to pixels)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .conditions import DEFAULT_LAYOUT, LAYOUTS

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST, VOID = range(12)


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

    def __init__(self, h: int, w: int, rng: np.random.Generator, look=None):
        self.h, self.w = h, w
        self.label = np.full((h, w), SKY, dtype=np.uint8)
        self.img = np.zeros((h, w, 3), dtype=np.float32)
        self.depth = np.full((h, w), np.inf, dtype=np.float32)
        self.rng = rng
        self.fine = rng.standard_normal((h, w), dtype=np.float32)  # texture grain
        self.med = _smooth_noise(rng, h, w, max(2.0, w / 24))
        self.coarse = _smooth_noise(rng, h, w, max(4.0, w / 6))
        self.tree_base = None
        # with conditions (a ``look``): how much of each pixel's colour is its
        # own light (lit windows, lamps), which the scene's illumination leaves
        # as it is; the street lamps (world positions) and the glows (image
        # positions) that light the scene at dusk and night
        self.look = look
        self.emit = None if look is None else np.zeros((h, w), dtype=np.float32)
        self.lamps: list = []
        self.glows: list = []

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

    def paint(self, shape, cls, colour, depth, grain=6.0, shade=None, where=None, emit=0.0):
        """Paint ``shape`` with class ``cls`` and ``colour`` (3-vector) plus grain.

        ``cls=None`` changes colours only (shadows, markings). ``where``:
        optional predicate on the existing labels (e.g. only on ground).
        ``emit``: the share of the colour that is the surface's own light
        (with conditions only).
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
                if self.emit is not None:
                    self.emit[r0:r1, c0:c1] = emit
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
            if self.emit is not None:
                self.emit[r0:r1, c0:c1][m] = emit

    def darken(self, shape, factor, where):
        if shape is None:
            return
        (r0, r1, c0, c1), m = shape
        m = where(self.label[r0:r1, c0:c1]) if m is None else m & where(self.label[r0:r1, c0:c1])
        self.img[r0:r1, c0:c1][m] *= factor


def _pick(rng, table):
    return table[rng.integers(len(table))] * rng.uniform(0.85, 1.15, 3).astype(np.float32)



class _Street:
    """Camera and street layout in metres; projection to pixels.

    ``cond`` (conditions, or None) sets the camera and the scene type's
    ``layout``; without, the layout's defaults draw the same numbers as
    before conditions existed."""

    def __init__(self, rng, h, w, cond=None):
        self.h, self.w = h, w
        self.layout = lay = DEFAULT_LAYOUT if cond is None else LAYOUTS[cond.scene]
        self.f = min(w, h) * rng.uniform(0.8, 1.05)  # the same vertical view at any aspect ratio
        self.yh = h * rng.uniform(0.43, 0.55)
        self.xv = w * (0.5 + rng.uniform(-0.1, 0.1))
        self.cam = rng.uniform(1.3, 1.7)
        self.road_l = -rng.uniform(*lay.road_half)
        self.road_r = rng.uniform(*lay.road_half)
        self.pave_l = self.road_l - rng.uniform(*lay.pave_width)
        self.pave_r = self.road_r + rng.uniform(*lay.pave_width)
        self.z_end = rng.uniform(*lay.z_end)
        self.face_l, self.face_r = self.pave_l, self.pave_r  # where the facades stand
        if cond is not None:
            self.f = min(w, h) * cond.focal
            self.yh = h * cond.horizon
            self.cam = cond.cam_height
            self.face_l = self.pave_l - rng.uniform(*lay.setback)
            self.face_r = self.pave_r + rng.uniform(*lay.setback)
        # depth of the ground at the bottom row
        self.z_bottom = self.f * self.cam / max(h - self.yh, 1.0)

    def px(self, X, Y, z):
        """World (X right, Y up, z forward) -> image (x, y)."""
        return self.xv + self.f * X / z, self.yh + self.f * (self.cam - Y) / z

    def scale(self, z):
        return self.f / z
