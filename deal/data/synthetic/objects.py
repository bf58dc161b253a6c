"""The object painters: ``_objects`` places fences, cars, pedestrians,
bicyclists, poles with lamps, signs and traffic lights, trees, void clutter and
sometimes the ego hood, and paints them far to near; one ``_*_fn`` per kind
draws its random choices up front and returns the painter. Also the foliage
colours the static world's tree lines share."""

from __future__ import annotations

import math

import numpy as np

from .canvas import (
    BICYCLIST,
    CAR,
    FENCE,
    PAVEMENT,
    PEDESTRIAN,
    POLE,
    ROAD,
    SIGN,
    TREE,
    VOID,
    _Canvas,
    _grid,
    _pick,
    _Street,
)
from .conditions import DEFAULT_LAYOUT

#: Probability that an image has bicyclists without conditions (must stay <= 0.15).
P_BICYCLIST = DEFAULT_LAYOUT.bike_p

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


def _tree_base(rng) -> np.ndarray:
    if rng.random() < 0.12:  # autumn
        return np.array([rng.uniform(120, 170), rng.uniform(100, 140), rng.uniform(30, 60)], dtype=np.float32)
    return np.array([rng.uniform(40, 95), rng.uniform(80, 140), rng.uniform(25, 65)], dtype=np.float32)


_LEAF_TINT = np.array([0.5, 0.8, 0.3], dtype=np.float32)


def _leaf_colour(base, fine, med) -> np.ndarray:
    """Foliage: a green base with strong grain at two scales (any array shape)."""
    leaves = 16 * fine + 22 * med
    return base * (1 + 0.004 * leaves)[..., None] + leaves[..., None] * _LEAF_TINT


def _objects(rng, st: _Street, cv: _Canvas, light: dict) -> None:
    items: list[tuple[float, callable]] = []
    z_near = max(st.z_bottom * 0.75, 2.0)
    lay, look = st.layout, cv.look
    # hard shadows of objects on the ground (with conditions, in sunshine): direction per metre of height
    cv.shadow = None
    if look is not None and look.sun:
        cv.shadow = (-light["sun_side"] * look.shadow_lat, look.shadow_along, look.shadow_dark)

    def depth_draw(zmax=70.0):
        return float(np.exp(rng.uniform(np.log(z_near), np.log(zmax))))

    # fences along the back of the pavement or the road edge (drawn first)
    for _ in range(rng.poisson(lay.fence_rate)):
        s = -1 if rng.random() < 0.5 else 1
        X = (st.pave_l + 0.15 if s < 0 else st.pave_r - 0.15) if rng.random() < lay.fence_back_p else (st.road_l - 0.3 if s < 0 else st.road_r + 0.3)
        z0 = rng.uniform(z_near, 25)
        _fence(rng, st, cv, X, z0, z0 + rng.uniform(10, 50), rng.uniform(*lay.fence_h))
    if lay.guard_rail_p > 0:  # metal rails along the road edges
        for s in (-1, 1):
            if rng.random() < lay.guard_rail_p:
                X = st.road_l - 0.5 if s < 0 else st.road_r + 0.5
                z0 = rng.uniform(z_near, 12)
                _fence(rng, st, cv, X, z0, z0 + rng.uniform(60, 150), 0.8, rail=True)

    # parked cars in rows along the road edges, and moving cars in the lanes
    for s in (-1, 1):
        if rng.random() < lay.parked_p:
            z = rng.uniform(z_near, 15)
            while z < min(70.0, st.f):  # beyond, a car is a pixel or two
                if rng.random() < lay.parked_fill:
                    w = rng.uniform(1.65, 1.9)
                    Xc = st.road_l + w / 2 + 0.2 if s < 0 else st.road_r - w / 2 - 0.2
                    items.append((z, _car_fn(rng, st, cv, Xc, z, w)))
                z += rng.uniform(5.0, 7.5)
    for _ in range(rng.poisson(lay.moving_rate)):
        w = rng.uniform(1.65, 1.9)
        Xc = rng.uniform(st.road_l + w / 2, st.road_r - w / 2) if st.road_r - st.road_l > w else 0.0
        z = depth_draw(60)
        if abs(Xc) < 1.2:
            z = max(z, st.z_bottom * 1.5 + 4)  # not straddling the camera's own lane up close
        items.append((z, _car_fn(rng, st, cv, Xc, z, w)))

    # pedestrians on the pavements (some crossing)
    for _ in range(rng.poisson(lay.ped_rate) if rng.random() < lay.ped_scene_p else 0):
        if rng.random() < 0.88:
            X = rng.uniform(st.pave_l + 0.3, st.road_l - 0.3) if rng.random() < 0.5 else rng.uniform(st.road_r + 0.3, st.pave_r - 0.3)
        else:
            X = rng.uniform(st.road_l, st.road_r)
        z = max(depth_draw(50), 4.0)
        items.append((z, _pedestrian_fn(rng, st, cv, X, z)))

    # bicyclists: rare
    if rng.random() < lay.bike_p:
        for _ in range(1 if rng.random() < 0.8 else 2):
            X = st.road_l + rng.uniform(0.6, 1.2) if rng.random() < 0.5 else st.road_r - rng.uniform(0.6, 1.2)
            z = float(np.exp(rng.uniform(np.log(max(z_near * 1.3, 3.0)), np.log(25.0))))
            items.append((z, _bicyclist_fn(rng, st, cv, X, z)))

    # street lamps (poles) with signs and traffic lights, plus sign posts
    for s in (-1, 1):
        if rng.random() < lay.lamp_p:
            X = st.road_l - rng.uniform(0.3, 0.8) if s < 0 else st.road_r + rng.uniform(0.3, 0.8)
            z, step = rng.uniform(z_near, 20), rng.uniform(*lay.lamp_step)
            while z < 80:
                items.append((z, _pole_fn(rng, st, cv, X, z, s, rng.uniform(*lay.lamp_h), lamp=True, sign_p=0.5)))
                z += step
    for _ in range(rng.poisson(lay.sign_rate)):
        s = -1 if rng.random() < 0.5 else 1
        X = st.road_l - rng.uniform(0.3, 1.0) if s < 0 else st.road_r + rng.uniform(0.3, 1.0)
        z = max(depth_draw(60), 7.0)  # signs stay small
        items.append((z, _pole_fn(rng, st, cv, X, z, s, rng.uniform(2.3, 3.2), lamp=False, sign_p=1.0)))
    if lay.big_sign_rate > 0:  # direction signs over the verge on two tall posts
        for _ in range(rng.poisson(lay.big_sign_rate)):
            s = -1 if rng.random() < 0.5 else 1
            X = st.road_l - rng.uniform(1.0, 3.0) if s < 0 else st.road_r + rng.uniform(1.0, 3.0)
            z = rng.uniform(max(z_near, 12.0), 90.0)
            items.append((z, _big_sign_fn(rng, st, cv, X, z, s)))

    # trees on the pavements
    for s in (-1, 1):
        if rng.random() < lay.street_tree_p:
            edge = st.road_l if s < 0 else st.road_r
            z, step = rng.uniform(z_near, 15), rng.uniform(*lay.tree_step)
            while z < 70:
                X = edge + s * rng.uniform(0.8, 1.6)
                items.append((z, _tree_fn(rng, st, cv, X, z)))
                z += step * rng.uniform(0.8, 1.2)

    # void clutter (bins, boxes, bollards) on the pavements
    for _ in range(rng.poisson(lay.clutter_rate)):
        X = rng.uniform(st.pave_l + 0.3, st.road_l) if rng.random() < 0.5 else rng.uniform(st.road_r, st.pave_r - 0.3)
        z = max(depth_draw(50), 5.0)
        items.append((z, _clutter_fn(rng, st, cv, X, z, lay.clutter_scale)))

    items.sort(key=lambda it: -it[0])
    for _, draw in items:
        draw()

    # the ego vehicle's hood, sometimes
    if rng.random() < lay.hood_p:
        H, W = st.h, st.w
        hood = rng.uniform(0.05, 0.12) * H
        yy, xx = _grid(H, W)
        curve = H - hood * (1 - 0.5 * ((xx - W / 2) / (0.6 * W)) ** 2)
        m = np.broadcast_to(yy >= curve, (H, W))
        cv.label[m] = VOID
        c = rng.uniform(20, 90) * np.ones(3, dtype=np.float32) + 20 * np.clip(1 - (yy - curve) / hood, 0, 1)[..., None]
        cv.img[m] = np.broadcast_to(c, (H, W, 3))[m]
        cv.depth[m] = 1.0


def _fence(rng, st, cv, X, z0, z1, h, rail=False):
    z0 = max(z0, 0.5)
    y0 = 0.35 * h if rail else 0
    pts = [st.px(X, y0, z0), st.px(X, h, z0), st.px(X, h, z1), st.px(X, y0, z1)]
    shape = cv.polygon(pts)
    if shape is None:
        return
    if rail:  # galvanised steel: a bright band, dark posts every two metres
        base = np.array([175, 178, 180], dtype=np.float32) * rng.uniform(0.8, 1.1)
    else:
        wood = rng.random() < 0.5
        base = np.array([rng.uniform(100, 150), rng.uniform(75, 105), rng.uniform(45, 70)], dtype=np.float32) if wood else _pick(rng, np.array([[120, 125, 125], [60, 90, 60], [40, 40, 45]], dtype=np.float32))
    (r0, r1, c0, c1), m = shape
    yy, xx = cv.coords((r0, r1, c0, c1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.abs(xx - st.xv) > 0.5, st.f * X / (xx - st.xv), z1)
    period = 2.0 if rail else rng.uniform(0.12, 0.3)
    slat = (np.mod(z, period) < period * (0.85 if rail else 0.55)).astype(np.float32)
    shade = np.broadcast_to((0.7 + 0.4 * slat)[..., None], m.shape + (1,))
    cv.paint(shape, FENCE, base, float(z0), grain=8.0, shade=shade)


def _car_fn(rng, st, cv, Xc, z, w):
    h = rng.uniform(1.35, 1.6)
    L = rng.uniform(3.9, 4.8)
    colour = _pick(rng, _CAR_COLOURS)
    glass = np.array([35, 40, 50], dtype=np.float32) * rng.uniform(0.7, 1.4)
    dark = np.array([22, 22, 24], dtype=np.float32)
    look = cv.look
    lights = look is not None and look.car_lights
    snow = look is not None and look.snow
    # with conditions, the near face's lamps are drawn up front: rear (red) or front (white)
    rear = rng.random() < 0.7 if look is not None else None

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
            if snow and h * s >= 3:
                cv.paint(cv.rect(x0 + 0.15 * w * s, yb - h * s, x1 - 0.15 * w * s, yb - h * s + 1), CAR, _SNOW_ON, z, grain=3)
            if lights:
                _car_lights(st, cv, x0, x1, yb - 0.45 * h * s, max(0.3 * h * s, 0.6), rear, z)
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
                                 st.px(Xc + 0.38 * w, h, z + 0.75 * L), st.px(Xc - 0.38 * w, h, z + 0.75 * L)]), CAR,
                     _SNOW_ON if snow else colour * 1.05, z)
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
        if snow:  # snow on the roof's edge
            cv.paint(cv.rect(x0 + inset_t, yt, x1 - inset_t, yt + max(0.06 * h * s, 1.0)), CAR, _SNOW_ON, z, grain=3)
        if look is None:
            lamp = np.array([200, 30, 30], dtype=np.float32) if rng.random() < 0.7 else np.array([235, 225, 190], dtype=np.float32)
        else:
            lamp = np.array([200, 30, 30], dtype=np.float32) if rear else np.array([235, 225, 190], dtype=np.float32)
        lw, lh = 0.16 * w * s, 0.08 * h * s
        if lights:
            _car_lights(st, cv, x0 + 0.03 * w * s, x1 - 0.03 * w * s, ym + 0.06 * h * s + lh / 2, max(lw, lh, 0.8), rear, z)
            return
        cv.paint(cv.rect(x0 + 0.03 * w * s, ym + 0.06 * h * s, x0 + 0.03 * w * s + lw, ym + 0.06 * h * s + lh), CAR, lamp, z, grain=3)
        cv.paint(cv.rect(x1 - 0.03 * w * s - lw, ym + 0.06 * h * s, x1 - 0.03 * w * s, ym + 0.06 * h * s + lh), CAR, lamp, z, grain=3)

    return draw


_SNOW_ON = np.array([232, 236, 242], dtype=np.float32)
_TAIL = np.array([255, 45, 30], dtype=np.float32)
_HEAD = np.array([255, 250, 232], dtype=np.float32)


def _car_lights(st, cv, xl, xr, y, size, rear, z):
    """Two lit lamps (rear: red, front: white) at the outer ends of [xl, xr], and their glows."""
    colour = _TAIL if rear else _HEAD
    r = max(size / 2, 0.5)
    strength = (0.7 if rear else 1.0) * (1.0 if cv.look.dark else 0.35)
    for x in (xl + r, xr - r):
        cv.paint(cv.ellipse(x, y, r, r * 0.8), CAR, colour, z, grain=2, emit=1.0)
        cv.glows.append((x, y, 0.8 * r + 0.3, colour * strength, z))


def _pedestrian_fn(rng, st, cv, X, z):
    h = rng.uniform(1.5, 1.9)
    wide = rng.uniform(0.42, 0.56)
    legs_c = _pick(rng, _CLOTHES[[0, 1, 5, 6, 3]])
    top_c = _pick(rng, _CLOTHES)
    skin = _pick(rng, _SKIN)
    hair = np.array([30, 25, 20], dtype=np.float32) * rng.uniform(0.8, 2.5)
    stride = rng.uniform(0.0, 0.25)
    look = cv.look
    umbrella = _pick(look.rng, _CLOTHES) if look is not None and look.weather == "rain" and look.rng.random() < 0.6 else None

    def draw():
        if z < 0.8:
            return
        s = st.scale(z)
        x, yb = st.px(X, 0.0, z)
        if cv.shadow is not None and z < 45:
            _cast_shadow(st, cv, X, z, 0.4, h)
        if umbrella is not None:
            cv.paint(cv.ellipse(x, yb - 1.02 * h * s, 0.5 * s, 0.16 * s), PEDESTRIAN, umbrella, z, grain=3)
            cv.paint(cv.line((x, yb - 1.02 * h * s), (x, yb - 0.75 * h * s), max(0.03 * s, 1.0)), PEDESTRIAN, umbrella * 0.4, z, grain=2)
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
    look = cv.look
    lamp_on = lamp and look is not None and look.lamps_on
    sign_emit = 0.5 if look is not None and look.dark else 0.0  # retro-reflective signs stand out at night

    def draw():
        if z < 0.8:
            return
        s = st.scale(z)
        x, yb = st.px(X, 0.0, z)
        _, yt = st.px(X, height, z)
        if cv.shadow is not None and z < 45:
            _cast_shadow(st, cv, X, z, width_m, height)
        wpx = int(min(max(round(width_m * s), 1), cap))
        xl = round(x - wpx / 2)
        cv.paint(cv.rect(xl, yt, xl + wpx, yb), POLE, metal, z, grain=4)
        if lamp:  # the arm over the road and the lamp head
            xa, ya = st.px(X - side * 1.6, height, z)
            cv.paint(cv.line((x, yt), (xa, ya), 1.0), POLE, metal, z, grain=3)
            if lamp_on:
                lc = look.lamp_colour * 255
                cv.paint(cv.rect(xa - 0.2 * s, ya, xa + 0.2 * s, ya + max(0.12 * s, 1)), POLE, lc, z, grain=2, emit=1.0)
                cv.lamps.append((X - side * 1.6, height, z))
                cv.glows.append((xa, ya + 0.5, max(0.5 * s, 0.8), lc * (0.8 if look.night else 0.4), z))
            else:
                cv.paint(cv.rect(xa - 0.2 * s, ya, xa + 0.2 * s, ya + max(0.12 * s, 1)), POLE, metal * 1.3, z, grain=3)
        if has_sign:
            cx, cy = st.px(X - side * 0.1, sign_y + sign_m / 2, z)
            r = sign_m * s / 2
            if sign_kind == 0:
                cv.paint(cv.ellipse(cx, cy, r, r), SIGN, sign_c, z, grain=4, emit=sign_emit)
                cv.paint(cv.ellipse(cx, cy, r * 0.6, r * 0.6), SIGN, np.array([235, 235, 235], np.float32), z, grain=4, emit=sign_emit)
            elif sign_kind == 1:
                cv.paint(cv.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)]), SIGN, sign_c, z, grain=4, emit=sign_emit)
            else:
                cv.paint(cv.rect(cx - r, cy - r * 0.75, cx + r, cy + r * 0.75), SIGN, sign_c, z, grain=4, emit=sign_emit)
                cv.paint(cv.rect(cx - r * 0.6, cy - r * 0.3, cx + r * 0.6, cy + r * 0.3), SIGN, sign_c * 0.6 + 90, z, grain=4, emit=sign_emit)
        if traffic_light:
            cx, cy = st.px(X - side * 0.2, height - 0.6, z)
            bw, bh = max(0.35 * s, 1.0), max(0.9 * s, 2.0)
            cv.paint(cv.rect(cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), SIGN, np.array([30, 30, 30], np.float32), z, grain=3)
            lc = np.array([[230, 40, 30], [240, 180, 30], [40, 220, 90]], np.float32)[rng.integers(3)]
            cv.paint(cv.ellipse(cx, cy - bh * 0.25, bw * 0.35, bw * 0.35), SIGN, lc, z, grain=3, emit=1.0 if look is not None else 0.0)
            if look is not None and look.dark:
                cv.glows.append((cx, cy - bh * 0.25, bw * 0.6, lc * 0.6, z))

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
    look = cv.look

    def draw():
        if z < 1.0:
            return
        s = st.scale(z)
        x, yb = st.px(X, 0.0, z)
        if cv.shadow is not None and z < 45:
            _cast_shadow(st, cv, X, z, 2.0, crown_y + 1.5)
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
            if look is not None:
                if look.snow:  # snow on the upper side of the crown
                    upper = 1.0 - np.clip((rows + r0 + 0.5 - top) / span, 0, 1)
                    pix = look.snow_cover(pix, cv.med[r0:r1, c0:c1][m] + 0.5 * cv.fine[r0:r1, c0:c1][m], 0.25 + 0.45 * upper)
                cv.emit[r0:r1, c0:c1][m] = 0.0
            cv.img[r0:r1, c0:c1][m] = pix
            cv.label[r0:r1, c0:c1][m] = TREE
            cv.depth[r0:r1, c0:c1][m] = z

    return draw


def _clutter_fn(rng, st, cv, X, z, scale=1.0):
    w = rng.uniform(0.4, 1.6) * scale
    h = rng.uniform(0.6, 1.6) * scale
    colour = rng.uniform(20, 230, 3).astype(np.float32)

    def draw():
        if z < 1.0:
            return
        x0, yb = st.px(X - w / 2, 0.0, z)
        x1, yt = st.px(X + w / 2, h, z)
        cv.paint(cv.rect(x0, yt, x1, yb), VOID, colour, z, grain=8)

    return draw


def _cast_shadow(st, cv, X, z, width, height):
    """The hard shadow of an upright object of ``width`` and ``height`` (m)
    standing at (X, z), on the ground only (``cv.shadow``: its direction
    per metre of height and its darkness)."""
    dx, dz, dark = cv.shadow
    ex, ez = dx * height, dz * height
    half = max(width, 1.2 * z / st.f) / 2  # at least a pixel wide where it starts
    z0 = z - half
    z1 = z0 + ez + half
    if min(z0, z1) < 0.5:
        return
    # the base segment and its translate by the shadow: a parallelogram on the ground, convex in the image too
    pts = [st.px(X - half, 0, z0), st.px(X + half, 0, z0), st.px(X + ex + half, 0, z1), st.px(X + ex - half, 0, z1)]
    cv.darken(cv.polygon(pts), dark, _on_ground)


def _on_ground(lab):
    return (lab == ROAD) | (lab == PAVEMENT)


def _big_sign_fn(rng, st, cv, X, z, side):
    """A large direction sign (blue or green, white lettering) on two posts."""
    w = rng.uniform(2.5, 4.5)
    h = rng.uniform(1.5, 2.5)
    y0 = rng.uniform(2.5, 4.0)
    colour = _pick(rng, np.array([[30, 80, 160], [30, 110, 60]], dtype=np.float32))
    metal = np.array([130, 132, 135], dtype=np.float32)
    look = cv.look
    emit = 0.5 if look is not None and look.dark else 0.0
    lines = int(rng.integers(1, 4))

    def draw():
        if z < 2.0:
            return
        s = st.scale(z)
        Xc = X + side * w / 2  # the panel stands out over the verge
        for Xp in (Xc - 0.4 * w, Xc + 0.4 * w):
            x, yb = st.px(Xp, 0.0, z)
            _, yt = st.px(Xp, y0, z)
            wpx = max(round(0.15 * s), 1)
            cv.paint(cv.rect(round(x - wpx / 2), yt, round(x - wpx / 2) + wpx, yb), POLE, metal, z, grain=4)
        x0, y_top = st.px(Xc - w / 2, y0 + h, z)
        x1, y_bot = st.px(Xc + w / 2, y0, z)
        cv.paint(cv.rect(x0, y_top, x1, y_bot), SIGN, colour, z, grain=4, emit=emit)
        for k in range(lines):
            yl = y_top + (y_bot - y_top) * (k + 0.7) / (lines + 0.6)
            cv.paint(cv.rect(x0 + 0.15 * (x1 - x0), yl - 0.08 * s, x1 - 0.2 * (x1 - x0), yl + 0.08 * s), SIGN,
                     np.array([235, 235, 235], np.float32), z, grain=3, emit=emit)

    return draw
