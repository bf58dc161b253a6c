"""What lighting and weather do to a scene with conditions: ``_Look`` (the
per-scene light, sky, fog and ground, drawn from the scene's stream) and
``_finish_look`` (illumination by the ambient light, the ego car's headlights
and the street lamps, glows, wet-road reflections, fog, rain streaks or snow
flakes, then exposure, white balance, vignetting, gamma and sensor noise).

Colours painted into the canvas are what a surface looks like in full
daylight; ``_finish_look`` multiplies them by the illumination, except the
share that is the surface's own light (``_Canvas.emit``: the sky, lit
windows, lamps, car lights), which stays as painted.
"""

from __future__ import annotations

import numpy as np

from .canvas import PAVEMENT, ROAD, SKY, VOID, _grid

_F = np.float32

# Ambient light per lighting (multiplies daylight colours), before weather.
_AMBIENT = {
    "day": (1.0, 1.0, 1.0),
    "low_sun": (1.0, 0.84, 0.64),
    "dusk": (0.40, 0.38, 0.50),
    "night": (0.11, 0.115, 0.15),
}
# What weather does to the ambient light and to a grey sky's brightness.
_WEATHER_LIGHT = {"clear": 1.0, "overcast": 0.82, "rain": 0.62, "fog": 0.85, "snow": 0.95}
# A grey sky's colour per lighting, relative to an overcast day.
_SKY_TINT = {
    "day": (1.0, 1.0, 1.0),
    "low_sun": (0.88, 0.80, 0.70),
    "dusk": (0.42, 0.40, 0.50),
    "night": (0.06, 0.06, 0.07),
}
_SNOW = np.array([236, 240, 246], dtype=_F)
# sodium (orange) or LED (white) street lamps
_LAMP_COLOURS = np.array([[1.0, 0.72, 0.38], [0.92, 0.95, 1.0]], dtype=_F)


class _Look:
    """The per-scene light and weather of ``cond``, drawn from ``rng``: a
    stream of its own (``SeedSequence([seed, index, 2])``), which also draws
    every other choice that depends on lighting or weather, so that forcing
    another lighting or weather changes how a scene looks, not the scene."""

    def __init__(self, rng, cond):
        lighting, weather = cond.lighting, cond.weather
        self.lighting, self.weather = lighting, weather
        self.rng = rng
        u = rng.uniform
        # the camera's own draws first: the same under every condition
        self.wb_jitter = rng.uniform(-0.08, 0.08, 3)
        self.vignette = u(0, 0.25)
        self.gamma = u(0.85, 1.15)
        self.night = lighting == "night"
        self.dark = lighting in ("dusk", "night")
        self.sun = weather == "clear" and lighting in ("day", "low_sun")
        self.low_sun = self.sun and lighting == "low_sun"
        # hard shadows, per metre of an object's height: across the street
        # (away from the sun's side) and along it (+: away from the camera);
        # a low sun casts them 2-4 times as long as the object is tall
        if self.low_sun:
            k, azimuth = u(2.0, 4.0), u(0.3, 1.1)
            self.shadow_lat, self.shadow_along = k * np.sin(azimuth), k * np.cos(azimuth) * (1 if u() < 0.5 else -1)
        elif self.sun:
            self.shadow_lat, self.shadow_along = u(0.2, 1.0), u(-0.4, 0.4)
        else:
            self.shadow_lat = self.shadow_along = 0.0
        self.shadow_dark = u(0.35, 0.5) if self.low_sun else u(0.45, 0.65)
        self.sun_gain = (u(1.15, 1.35), u(0.42, 0.6)) if self.low_sun else (u(1.0, 1.2), u(0.6, 0.85))
        ambient = np.array(_AMBIENT[lighting], dtype=_F)
        if lighting == "low_sun" and not self.sun:  # clouds take most of the sun's colour away
            ambient = _F(0.3) * ambient + _F(0.7 * 0.8)
        self.ambient = ambient * _WEATHER_LIGHT[weather] * _F(u(0.85, 1.1))
        if self.low_sun:
            self.ambient *= _F(1.12)
        self.snow = weather == "snow"
        self.wet = u(0.35, 0.6) if weather == "rain" else 0.0
        # lights: street lamps on at dusk and night, car lights also in rain and fog
        self.lamps_on = self.dark
        self.car_lights = self.dark or weather in ("rain", "fog")
        self.windows_lit = {"night": u(0.35, 0.7), "dusk": u(0.1, 0.35)}.get(lighting, 0.0)
        self.headlights = {"night": u(0.6, 0.9), "dusk": u(0.2, 0.4)}.get(lighting, 0.0)
        self.lamp_colour = _LAMP_COLOURS[int(rng.integers(2))]

        # the sky: a gradient from top to horizon, clouds
        if weather == "clear":
            if lighting == "day":
                top = [u(50, 110), u(100, 150), u(180, 235)]
                bottom = [u(160, 200), u(185, 215), u(215, 245)]
            elif lighting == "low_sun":
                top = [u(45, 80), u(80, 120), u(150, 200)]
                bottom = [u(235, 255), u(170, 210), u(100, 150)]
            elif lighting == "dusk":
                top = [u(15, 35), u(25, 45), u(60, 100)]
                bottom = [u(190, 235), u(100, 140), u(80, 120)]
            else:
                top = [u(1, 5), u(2, 6), u(6, 14)]
                bottom = [u(14, 30), u(12, 24), u(16, 28)]
            self.cloud = u(0, 30) * float(np.mean(_SKY_TINT[lighting]))
        else:
            if weather == "overcast":
                g_top, g_bottom = u(150, 200), u(195, 230)
            elif weather == "rain":
                g_top, g_bottom = u(85, 120), u(115, 150)
            elif weather == "snow":
                g_top, g_bottom = u(165, 200), u(195, 225)
            else:  # fog: the sky is the fog
                g_top = g_bottom = u(185, 220)
            tint = np.array(_SKY_TINT[lighting], dtype=_F)
            top = g_top * tint * np.array([1, 1.01, 1.05], dtype=_F)
            bottom = g_bottom * tint
            if self.night:  # clouds lit from below by the town
                bottom = bottom + np.array([u(10, 25), u(7, 18), u(4, 10)], dtype=_F)
            self.cloud = 6.0 * float(tint.mean())
        self.sky_top, self.sky_bottom = np.asarray(top, dtype=_F), np.asarray(bottom, dtype=_F)
        # haze (fog: far things vanish within tens of metres) towards the horizon's colour
        self.fog_dist = {"fog": u(15, 45), "snow": u(40, 120), "rain": u(70, 180)}.get(weather, u(120, 500))
        self.fog_colour = self.sky_bottom.copy()
        self.noise = u(7, 13) if self.night else (u(4, 9) if self.dark else u(2, 7))
        self.gain = u(1.0, 1.3) if self.night else u(0.75, 1.2)

    # -- surfaces: what the condition does to the ground, foliage, roofs

    def snow_cover(self, col, noise, amount):
        """Snow over about ``amount`` (0..1, scalar or per pixel) of colours ``col``
        (N x 3), in patches where the unit-variance ``noise`` (N,) is high."""
        amount = np.asarray(amount, dtype=_F)
        m = (np.clip((amount - 0.5) * 4.0 + 1.2 * noise, 0.0, 1.0) * (amount > 0))[:, None]
        return col * (1 - m) + (_SNOW + 4.0 * noise[:, None]) * m


def _splat(img, x, y, r, rgb):
    """Add a glow: a Gaussian of radius ``r`` pixels and peak ``rgb`` at (x, y)."""
    H, W = img.shape[:2]
    R = 2.5 * r
    r0, r1 = max(0, int(y - R)), min(H, int(y + R) + 1)
    c0, c1 = max(0, int(x - R)), min(W, int(x + R) + 1)
    if r1 <= r0 or c1 <= c0:
        return
    yy = (np.arange(r0, r1, dtype=_F) + 0.5 - y)[:, None]
    xx = (np.arange(c0, c1, dtype=_F) + 0.5 - x)[None, :]
    g = np.exp((xx * xx + yy * yy) * _F(-0.5 / (r * r)))
    img[r0:r1, c0:c1] += g[..., None] * rgb


def _reflect(img, label, wet, coarse):
    """Wet road: each road pixel mirrors what stands on the road above it
    (about the bottom of the first thing above it in its column), smeared
    vertically, more in puddles."""
    H, W = label.shape
    ground = (label == ROAD) | (label == PAVEMENT)
    rows = np.arange(H)[:, None]
    above = np.where(~ground, rows, -1)
    base = np.maximum.accumulate(above, axis=0)  # the lowest non-ground row above (or at) each pixel
    mirror = np.clip(2 * base - rows + 1, 0, H - 1)
    cols = np.broadcast_to(np.arange(W)[None, :], (H, W))
    refl = img[mirror, cols]
    refl = (refl + img[np.clip(mirror - 1, 0, H - 1), cols] + img[np.clip(mirror - 2, 0, H - 1), cols]) / 3
    road = label == ROAD
    a = np.where(road, wet, 0.4 * wet) * np.clip(0.6 + 0.5 * coarse, 0.2, 1.0)
    a = np.where(ground & (base >= 0), a, 0.0)[..., None].astype(_F)
    img *= 1 - a * 0.6
    img += a * refl


def _streaks(rng, H, W, density, length, slope):
    """Rain: thin slanted streaks, a HxW map in [0, 1]."""
    L = max(2, int(length))
    seeds = (rng.random((H + L, W), dtype=_F) < density).astype(_F)
    c = np.cumsum(seeds, axis=0)
    run = c[L:] - c[:-L]
    shift = (np.arange(H) * slope).astype(np.intp)[:, None]
    return np.minimum(run[np.arange(H)[:, None], (np.arange(W)[None, :] + shift) % W], 1.0)


def _finish_look(rng, st, cv, look: _Look) -> np.ndarray:
    """``rng``: the scene's stream (the sensor noise); what depends on the
    weather draws from ``look.rng``."""
    H, W = st.h, st.w
    img, depth, emit = cv.img, cv.depth, cv.emit
    yy, xx = _grid(H, W)
    noise = rng.standard_normal((H, W), dtype=_F)

    # --- illumination: ambient, plus the ego car's headlights and the lamps at night
    illum = np.broadcast_to(look.ambient, (H, W, 3))
    if look.headlights > 0 or cv.lamps:
        Z = np.where(np.isfinite(depth), depth, 1e4).astype(_F)
        X = (xx - st.xv) * Z / st.f
        extra = np.zeros((H, W, 3), dtype=_F)
        if look.headlights > 0:
            cone = np.clip(1.0 - np.abs(X) / (1.2 + 0.3 * Z), 0.0, 1.0)
            beam = look.headlights * np.exp(-Z / _F(16.0)) * cone
            extra += beam[..., None] * np.array([0.95, 0.95, 0.9], dtype=_F)
        if cv.lamps:
            Y = st.cam - (yy - st.yh) * Z / st.f
            for Xl, Hl, Zl in cv.lamps[-8:]:  # the nearest (painted last)
                d2 = (X - Xl) ** 2 + (Z - Zl) ** 2 + 0.3 * (Y - Hl) ** 2
                pool = np.exp(d2 * _F(-1.0 / (0.6 * Hl * Hl)))
                extra += (0.7 * pool)[..., None] * look.lamp_colour
        illum = illum + extra
    e = emit[..., None]
    img *= illum * (1 - e) + e

    # --- the wet road mirrors what stands on it
    if look.wet > 0:
        _reflect(img, cv.label, look.wet, cv.coarse)

    # --- haze or fog towards the horizon's colour (none on the sky); beyond the
    # meteorological optical range (5 % of the contrast left) nothing can be
    # seen, so nothing is labelled: void, as annotators mark what they cannot make out
    fog = -np.expm1(depth * _F(-1.0 / look.fog_dist))[..., None]
    img += (look.fog_colour - img) * fog
    cv.label[(fog[..., 0] > 0.95) & (cv.label != SKY)] = VOID

    # --- glows of lamps and car lights, dimmed by the fog in front of them
    if cv.glows:
        big = 1.5 if look.weather in ("fog", "rain") else 1.0
        r_max = max(W, H) / 24
        for x, y, r, rgb, z in cv.glows:
            t = float(np.exp(-z / look.fog_dist))
            r = min(r * big, r_max)
            _splat(img, x, y, max(r, 0.6), rgb * (0.35 + 0.65 * t))
            if look.wet > 0 and y < H:  # its smear on the wet road below
                _splat(img, x, min(H - 1.0, y + 2.0 * r * big + 2), max(r, 0.7), rgb * (0.3 * look.wet * t))

    # --- falling rain or snow
    if look.weather == "rain":
        L = max(3, H // 10)
        s = _streaks(look.rng, H, W, 0.07 / L, L, look.rng.uniform(-0.25, 0.25))
        img += (s * look.rng.uniform(25, 45))[..., None]
    elif look.snow:
        flakes = (look.rng.random((H, W), dtype=_F) < 0.02) & (cv.fine > 0.3)
        img[flakes] = img[flakes] * 0.3 + _F(0.7 * 235)

    # --- the camera: exposure, white balance, vignetting, gamma, sensor noise
    wb = (look.gain * (1 + look.wb_jitter)).astype(_F)
    vig = 1 - look.vignette * 2 * (((xx - W / 2) / W) ** 2 + ((yy - H / 2) / H) ** 2)
    img *= vig[..., None] * wb
    gamma_lut = (255.0 * (np.arange(256, dtype=_F) / 255.0) ** look.gamma).astype(_F)
    np.clip(img, 0, 255, out=img)
    out = gamma_lut[img.astype(np.uint8)]
    out += (look.noise * noise)[..., None]
    out += 0.5
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)

