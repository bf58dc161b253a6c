"""The scene generator: ``generate_scene`` ray-casts the static world
(``_background``: sky, road and pavement, facades or tree lines, the far end),
hands over to the object painters and finishes the image (``_finish``: haze,
exposure, white balance, vignetting, gamma, sensor noise). Also the dataset's
``SYNTHETIC_INFO``, ``SPLIT_OFFSETS`` and ``DEFAULT_SIZE``."""

from __future__ import annotations

import math

import numpy as np

from ..base import DatasetInfo
from ..camvid import CAMVID_CLASSES, CAMVID_PALETTE
from .canvas import BUILDING, PAVEMENT, ROAD, SKY, TREE, VOID, _Canvas, _grid, _Street
from .conditions import Conditions, draw_conditions
from .look import _Look, _finish_look
from .objects import _leaf_colour, _objects, _tree_base

SYNTHETIC_INFO = DatasetInfo(
    name="synthetic-streets",
    class_names=CAMVID_CLASSES,
    palette=CAMVID_PALETTE,
    void_index=VOID,
)

#: Index offsets so that each split has its own scenes and changing one
#: split's size never changes another split's images.
SPLIT_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}

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

# sheds: corrugated metal and concrete
_INDUSTRIAL_COLOURS = np.array(
    [[185, 185, 180], [130, 128, 125], [150, 160, 170], [90, 110, 130], [170, 150, 120], [110, 115, 110]],
    dtype=np.float32,
)
# houses: render, brick, timber
_VILLAGE_COLOURS = np.array(
    [[225, 222, 215], [215, 205, 185], [150, 75, 55], [190, 160, 120], [120, 90, 65], [200, 190, 170]],
    dtype=np.float32,
)
_PALETTES = {"town": _FACADE_COLOURS, "industrial": _INDUSTRIAL_COLOURS, "village": _VILLAGE_COLOURS}
_LIT_WINDOW = np.array([255, 205, 135], dtype=np.float32)


def _cell_hash(a, b, c, salt):
    """A uniform number in [0, 1) per integer cell (a, b, c): which windows are lit."""
    h = (a.astype(np.int64) * 73856093) ^ (b.astype(np.int64) * 19349663) ^ (c.astype(np.int64) * 83492791) ^ salt
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF) / 65536.0


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


def generate_scene(seed: int, index: int, height: int = DEFAULT_SIZE[0], width: int = DEFAULT_SIZE[1],
                   conditions: str | Conditions = "none"):
    """One street scene: ``(image HxWx3 uint8, mask HxW uint8)``, the same for the
    same ``(seed, index, height, width, conditions)``.

    ``conditions``: ``"none"`` (the scenes as before conditions existed),
    ``"long_tail"`` (the scene's own draw, ``draw_conditions(seed, index)``)
    or a ``Conditions`` to force."""
    img, cv = _render(seed, index, height, width, conditions)
    return img, cv.label


def _render(seed, index, height, width, conditions):
    """``generate_scene``'s work: the image and the canvas (labels, depth in metres)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got {seed}, {index}")
    if height < 16 or width < 16:
        raise ValueError(f"scenes need at least 16x16 pixels, got {height}x{width}")
    cond = conditions if isinstance(conditions, Conditions) else draw_conditions(seed, index, conditions)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    H, W = int(height), int(width)
    st = _Street(rng, H, W, cond)
    look = None if cond is None else _Look(np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 2])), cond)
    cv = _Canvas(H, W, rng, look)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        light = _background(rng, st, cv)
    _objects(rng, st, cv, light)
    img = _finish(rng, st, cv, light) if look is None else _finish_look(rng, st, cv, look)
    return img, cv


def _background(rng, st: _Street, cv: _Canvas) -> dict:
    """Ray-cast the static world. Surfaces are found per pixel on whole
    arrays; colours are then computed only at the pixels of each surface."""
    H, W = st.h, st.w
    xs = np.arange(W, dtype=np.float32) + 0.5
    ys = np.arange(H, dtype=np.float32) + 0.5
    dx = (xs - st.xv) / st.f  # (W,) ray slope sideways
    dy = (ys - st.yh) / st.f  # (H,) ray slope downwards
    INF = np.float32(np.inf)
    lay, look = st.layout, cv.look
    palette = _PALETTES[lay.palette]

    overcast = rng.random() < 0.35
    sun_side = -1 if rng.random() < 0.5 else 1  # the side whose facades cast shadows
    shadow_k = 0.0 if overcast else rng.uniform(0.2, 1.0)
    if look is not None:  # shadow_k: the facades' shadows across the street per metre of height
        overcast, shadow_k = not look.sun, look.shadow_lat

    # --- facades (or tree lines) on each side, segmented along depth
    sides = {}
    for s, X in ((-1, st.face_l), (1, st.face_r)):
        trees = rng.random() < lay.side_tree_p
        if trees:
            edges, hts = _segments(rng, 0.0, st.z_end, (4, 10), (4, 10), 0.05, (2, 4))
        else:
            edges, hts = _segments(rng, rng.uniform(-3, 3), st.z_end, lay.facade_len, lay.facade_h, lay.gap_p, lay.gap_len)
        n = len(hts)
        sides[s] = dict(X=X, trees=trees, edges=edges, hts=hts,
                        colour=palette[rng.integers(len(palette), size=n)] * rng.uniform(0.85, 1.15, (n, 3)).astype(np.float32),
                        win=rng.random(n) < lay.window_p, pz=rng.uniform(2.0, 4.0, n).astype(np.float32),
                        floor=rng.uniform(2.8, 3.6, n).astype(np.float32),
                        wfrac=rng.uniform(0.35, 0.65, n).astype(np.float32),
                        hfrac=rng.uniform(0.35, 0.6, n).astype(np.float32),
                        glass=rng.uniform(25, 80, n).astype(np.float32))

    # --- the far end: buildings, trees or unlabelled stuff across the street
    end_edges, end_hts = _segments(rng, -300.0, 300.0, (6, 20), (6, 30), 0.0, (1, 2))
    ne = len(end_hts)
    end_kind = rng.random(ne)
    end_tree = end_kind < lay.end_tree_p
    end_void = end_kind > 1 - lay.end_void_p  # construction, hoardings: void
    end_colour = palette[rng.integers(len(palette), size=ne)] * rng.uniform(0.85, 1.15, (ne, 3)).astype(np.float32)

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
    if look is not None:  # the sky is light, not lit: the illumination leaves it
        top, bottom, cloud = look.sky_top, look.sky_bottom, look.cloud
        cv.emit.reshape(-1)[idx] = 1.0
    elif overcast:
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
    if lay.lane_width > 0:  # a line between each pair of lanes
        lw_ = lay.lane_width
        mark = (np.abs(np.mod(Xr - lane_x + lw_ / 2, lw_) - lw_ / 2) < half) & (np.mod(zr, period) < dash)
    else:
        mark = (np.abs(Xr - lane_x) < half) & (np.mod(zr, period) < dash)
    if lay.lane_p < 1.0 and rng.random() >= lay.lane_p:
        mark[:] = False
    if rng.random() < lay.edge_line_p:
        e = rng.uniform(0.2, 0.5)
        mark |= (np.abs(Xr - (st.road_l + e)) < half) | (np.abs(Xr - (st.road_r - e)) < half)
    if rng.random() < lay.zebra_p:  # zebra crossing
        z0 = rng.uniform(st.z_bottom, st.z_bottom + 15)
        mark |= (zr > z0) & (zr < z0 + 3.5) & (np.mod(Xr, 1.0) < 0.5)
    col[mark] = rng.uniform(170, 230) + 4 * fine[ri[mark]][:, None]
    if look is not None and look.snow:  # packed snow, slush in the wheel tracks
        track = np.abs(np.abs(np.mod(Xr - lane_x, 3.5) - 1.75) - 0.8) < 0.15 + 0.4 * pr
        slush = 0.5 * asphalt + look.rng.uniform(50, 90) * np.array([1.0, 0.97, 0.92], dtype=np.float32)
        col = np.where(track[:, None], slush + (8 * fine[ri] + 12 * med[ri])[:, None],
                       look.rng.uniform(195, 225) * np.array([1.0, 0.99, 0.97], dtype=np.float32) + (4 * fine[ri] + 9 * med[ri])[:, None])
    elif look is not None and look.wet > 0:  # wet asphalt is darker, the paint less so
        col *= np.where(mark, 1 - 0.3 * look.wet, 1 - 0.7 * look.wet).astype(np.float32)[:, None]
    img[ri] = col

    pi, Xp, zp, pp = idx[~on_road], X[~on_road], z[~on_road], px_m[~on_road]
    pave = rng.uniform(120, 185) * (np.array([1.0, 0.98, 0.93], dtype=np.float32) + rng.uniform(-0.05, 0.05, 3).astype(np.float32))
    tile = rng.uniform(0.4, 1.0)
    lw = np.maximum(0.04, 0.5 * pp)
    joints = (np.mod(Xp, tile) < lw) | (np.mod(zp, tile) < lw)
    col = pave + (4 * fine[pi] + 6 * med[pi] - 22 * joints)[:, None]
    kerb = np.minimum(np.abs(Xp - st.road_l), np.abs(Xp - st.road_r)) < np.maximum(0.25, 0.6 * pp)
    col[kerb] = pave * rng.uniform(1.05, 1.25) + 3 * fine[pi[kerb]][:, None]
    if look is not None:
        if look.snow:  # fresh snow, heaped along the kerb
            col = look.rng.uniform(225, 245) * np.array([0.98, 0.99, 1.0], dtype=np.float32) + (2 * fine[pi] + 3 * med[pi])[:, None]
            col[kerb] = col[kerb] * 0.9
        elif look.wet > 0:
            col *= np.float32(1 - 0.4 * look.wet)
        verge = (Xp < st.pave_l) | (Xp > st.pave_r)  # beyond the pavement, before set-back facades
        if lay.verge != "pavement" and verge.any():
            vi = pi[verge]
            lab[vi] = TREE if lay.verge == "grass" else VOID
            if lay.verge == "grass":
                c = np.array([rng.uniform(60, 110), rng.uniform(95, 140), rng.uniform(35, 65)], dtype=np.float32)
                vcol = c * (1 + 0.004 * (14 * fine[vi] + 18 * med[vi]))[:, None] + (10 * fine[vi] + 12 * med[vi])[:, None] * np.array([0.5, 0.8, 0.3], np.float32)
            else:  # gravel, dirt
                vcol = rng.uniform(100, 150) * np.array([1.0, 0.95, 0.85], dtype=np.float32) + (12 * fine[vi] + 10 * med[vi])[:, None]
            if look.snow:
                vcol = look.snow_cover(vcol, 0.5 * fine[vi] + 0.5 * med[vi], 0.8)
            col[verge] = vcol
    img[pi] = col

    if shadow_k > 0:  # shadows of the sun-side facades on the ground
        side = sides[sun_side]
        hz, _ = _lookup(side["edges"], side["hts"], z)
        if side["trees"]:
            hz = hz * 0.6
        lateral = (X - side["X"]) * -sun_side  # distance from the facade towards the street
        sh = idx[(lateral >= 0) & (lateral < shadow_k * hz)]
        dark = rng.uniform(0.45, 0.65) if look is None else look.shadow_dark
        img[sh] *= dark * np.array([0.95, 0.98, 1.08], dtype=np.float32)

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
        if look is not None:
            gain = look.sun_gain[0] if sun else (look.sun_gain[1] if look.sun else 1.0)
        if side["trees"]:
            lab[idx] = TREE
            img[idx] = _leaf_colour(_tree_base(rng), fine[idx], med[idx]) * gain
            if look is not None and look.snow:
                img[idx] = look.snow_cover(img[idx], med[idx] + 0.5 * fine[idx], 0.45)
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
        if look is not None:
            if look.snow:  # snow on the roof's edge
                roof = Y > side["hts"][seg] - 0.6
                img[idx[roof]] = look.snow_cover(img[idx[roof]], fine[idx[roof]], 0.9)
            if look.windows_lit > 0 and wi.size:
                cell_u = np.floor((zf[wi] - side["edges"][seg[wi]]) / pz[wi])
                lit = _cell_hash(seg[wi], cell_u, np.floor(Y[wi] / fl[wi]), s * 7919 + code) < look.windows_lit
                li = idx[wi[lit]]
                img[li] = _LIT_WINDOW * look.rng.uniform(0.7, 1.0) + (12 * med[li])[:, None]
                cv.emit.reshape(-1)[li] = 1.0

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
        if look is not None:
            if look.snow:
                cover = np.where(tr, 0.4, np.where(Ye > h_end[c] - 1.0, 0.95, 0.0))
                col = look.snow_cover(col, np.where(tr, med[idx], fine[idx]), cover)
            if look.windows_lit > 0 and win.any():
                wi = np.flatnonzero(win)
                lit = _cell_hash(seg[wi], np.floor(Xe[wi] / 3.0), np.floor(Ye[wi] / 3.2), 104729) < look.windows_lit
                col[wi[lit]] = _LIT_WINDOW * look.rng.uniform(0.6, 0.9)
                cv.emit.reshape(-1)[idx[wi[lit]]] = 1.0
        img[idx] = col

    z_best[kind == 0] = 0.0  # no haze on the sky itself
    cv.depth[:] = z_best
    return dict(overcast=overcast, sun_side=sun_side, shadow_k=shadow_k, horizon=bottom, sides=sides)


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
