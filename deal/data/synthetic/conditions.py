"""Per-scene conditions with the long tail of real street data.

A scene's conditions are four independent draws, each from a table where a
few values are common and the rest rare: the lighting, the weather, the
scene type (the street's layout and what stands in it) and the camera (its
height, horizon row and focal length, which set the scale of everything).
Independent draws make the combined space long-tailed as well: the most
common combination (day, clear, city centre, car camera) holds about 7 % of
the scenes, and most of the 480 combinations appear in none of 400.

``draw_conditions(seed, index, kind)`` draws them from their own random
stream, ``SeedSequence([seed, index, 1])``, so the scene's stream
(``SeedSequence([seed, index])``) is the same whatever the conditions, and
``kind="none"`` (no conditions: ``None``) leaves the scenes as they were
before conditions existed.

``LAYOUTS`` holds what each scene type changes: road and pavement widths,
facade heights and gaps, set-back buildings behind verges, and the rates of
every object. The rare classes are concentrated in few scene types:
bicyclists mostly on boulevards and residential streets (none on arterial
roads), fences in residential and industrial streets and as guard rails on
arterial roads, pedestrians and poles in the city centre. ``Layout()``, the
defaults, are the numbers the generator used before conditions existed.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

#: The values of ``dataset.synthetic.conditions``.
CONDITION_SETS = ("none", "long_tail")

# The probability tables, most common value first. Lighting and weather follow
# the order of their frequency in driving data (BDD100K: mostly daytime and
# clear; fog and snow rare), scaled so that every value still appears in a
# few scenes of a 400-scene train split (the rarest, snow, in about 16).
LIGHTING = {"day": 0.64, "low_sun": 0.16, "dusk": 0.12, "night": 0.08}
WEATHER = {"clear": 0.56, "overcast": 0.24, "rain": 0.10, "fog": 0.06, "snow": 0.04}
SCENE_TYPES = {"city_centre": 0.30, "residential": 0.26, "boulevard": 0.18, "arterial": 0.12,
               "industrial": 0.08, "village": 0.06}
CAMERAS = {"car": 0.62, "wide": 0.14, "tele": 0.12, "high": 0.12}

#: Every table by the name of its column in conditions.csv.
TABLES = {"lighting": LIGHTING, "weather": WEATHER, "scene": SCENE_TYPES, "camera": CAMERAS}

# Camera kinds, each a uniform range per value: height above the road (m),
# horizon row (fraction of the image height from the top: the pitch) and
# focal length (fraction of min(height, width)). "car" is the camera of the
# scenes without conditions; "wide" and "tele" make everything smaller or
# larger; "high" (a bus, a truck) looks down from higher, horizon raised.
CAMERA_RANGES = {
    "car": {"cam_height": (1.3, 1.7), "horizon": (0.43, 0.55), "focal": (0.8, 1.05)},
    "wide": {"cam_height": (1.2, 1.6), "horizon": (0.42, 0.56), "focal": (0.45, 0.68)},
    "tele": {"cam_height": (1.3, 1.7), "horizon": (0.44, 0.54), "focal": (1.5, 2.4)},
    "high": {"cam_height": (2.3, 3.4), "horizon": (0.25, 0.40), "focal": (0.7, 1.0)},
}


@dataclass(frozen=True)
class Conditions:
    """One scene's conditions (a row of conditions.csv, less split and id)."""

    lighting: str
    weather: str
    scene: str
    camera: str
    cam_height: float
    horizon: float
    focal: float

    def __post_init__(self):
        for name, table in TABLES.items():
            if getattr(self, name) not in table:
                raise ValueError(f"conditions: {name} {getattr(self, name)!r} is not one of {', '.join(table)}")

    def row(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "Conditions":
        """The same conditions with some values forced (tests, figures)."""
        return dataclasses.replace(self, **changes)


# each table's values and cumulative probabilities, for drawing by inverse CDF
_CDFS = {name: (list(table), list(itertools.accumulate(table.values()))) for name, table in TABLES.items()}


def _draw(u: float, name: str) -> str:
    values, cdf = _CDFS[name]
    return values[min(bisect.bisect_right(cdf, u * cdf[-1]), len(values) - 1)]


def draw_conditions(seed: int, index: int, kind: str = "long_tail") -> Conditions | None:
    """The conditions of scene ``(seed, index)``: ``None`` for ``kind="none"``."""
    if kind not in CONDITION_SETS:
        raise ValueError(f"conditions: {kind!r} is not one of {', '.join(CONDITION_SETS)}")
    if kind == "none":
        return None
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1]))
    u = rng.random(len(TABLES) + len(CAMERA_RANGES["car"])).tolist()
    drawn = {name: _draw(u[k], name) for k, name in enumerate(TABLES)}
    cam = {key: round(lo + (hi - lo) * u[len(TABLES) + k], 4)
           for k, (key, (lo, hi)) in enumerate(CAMERA_RANGES[drawn["camera"]].items())}
    return Conditions(**drawn, **cam)


@dataclass(frozen=True)
class Layout:
    """A scene type: the street's geometry and the rate of each object.

    Ranges are uniform draws in metres; ``*_rate`` are Poisson means per
    scene, ``*_p`` probabilities per scene (or per side). The defaults are the
    scenes without conditions.
    """

    road_half: tuple = (1.8, 5.0)  # each side of the camera
    pave_width: tuple = (2.0, 5.5)
    setback: tuple = (0.0, 0.0)  # a verge between the pavement and the facades
    verge: str = "pavement"  # what it is: pavement | grass (CamVid's VegetationMisc: Tree) | gravel (void)
    z_end: tuple = (60.0, 220.0)
    side_tree_p: float = 0.15  # a tree line instead of facades, per side
    facade_len: tuple = (6, 22)
    facade_h: tuple = (4, 17)
    gap_p: float = 0.12
    gap_len: tuple = (3, 8)
    window_p: float = 0.85
    palette: str = "town"  # the facade colours: town | industrial | village
    end_tree_p: float = 0.25  # the far end: trees, void hoardings, else buildings
    end_void_p: float = 0.12
    lane_p: float = 1.0  # a dashed centre line
    lane_width: float = 0.0  # > 0: dashed lines every lane_width metres (wide roads)
    edge_line_p: float = 0.5
    zebra_p: float = 0.15
    fence_rate: float = 0.6
    fence_back_p: float = 0.6  # at the back of the pavement (else at the road edge)
    fence_h: tuple = (1.0, 1.8)
    guard_rail_p: float = 0.0  # a metal rail along each road edge
    parked_p: float = 0.6  # a row of parked cars, per side
    parked_fill: float = 0.5
    moving_rate: float = 1.0
    ped_scene_p: float = 0.8
    ped_rate: float = 2.2
    bike_p: float = 0.10
    lamp_p: float = 0.6  # a row of street lamps, per side
    lamp_h: tuple = (4.5, 8.0)
    lamp_step: tuple = (15, 35)
    sign_rate: float = 1.8
    big_sign_rate: float = 0.0  # large direction signs on tall posts
    street_tree_p: float = 0.5  # a row of trees along the kerb, per side
    tree_step: tuple = (7, 16)
    clutter_rate: float = 2.0
    clutter_scale: float = 1.0
    hood_p: float = 0.2


#: The scene types' layouts (the docstring of ``Layout`` says what each field is).
LAYOUTS = {
    # tall facades without gaps, wide pavements crowded with pedestrians,
    # many poles, signs and traffic lights, few trees and fences
    "city_centre": Layout(road_half=(3.0, 5.5), pave_width=(3.5, 7.0), z_end=(60.0, 160.0), side_tree_p=0.03,
                          facade_len=(8, 20), facade_h=(12, 32), gap_p=0.04, gap_len=(2, 5), window_p=0.95,
                          end_tree_p=0.05, end_void_p=0.1, edge_line_p=0.6, zebra_p=0.35, fence_rate=0.15,
                          parked_p=0.35, moving_rate=1.6, ped_scene_p=0.97, ped_rate=4.5, bike_p=0.05,
                          lamp_p=0.75, lamp_step=(12, 25), sign_rate=2.6, street_tree_p=0.2, clutter_rate=2.5),
    # low houses with gardens between, garden fences, trees, parked cars, cyclists
    "residential": Layout(road_half=(2.5, 4.0), pave_width=(2.0, 4.0), setback=(0.0, 4.0), verge="grass",
                          z_end=(80.0, 220.0), side_tree_p=0.3, facade_len=(7, 14), facade_h=(4, 9), gap_p=0.35,
                          gap_len=(4, 10), end_tree_p=0.55, end_void_p=0.05, edge_line_p=0.1, zebra_p=0.05,
                          fence_rate=1.8, fence_back_p=0.9, fence_h=(0.9, 1.6), parked_p=0.85, parked_fill=0.6,
                          moving_rate=0.5, ped_scene_p=0.6, ped_rate=1.3, bike_p=0.2, lamp_p=0.55,
                          sign_rate=1.0, street_tree_p=0.8, clutter_rate=1.5),
    # a wide avenue: several lanes, trees in rows, wide pavements, bicycle lanes
    "boulevard": Layout(road_half=(5.5, 9.0), pave_width=(4.0, 8.0), z_end=(120.0, 300.0), side_tree_p=0.1,
                        facade_len=(10, 24), facade_h=(10, 24), gap_p=0.08, window_p=0.9, end_tree_p=0.3,
                        end_void_p=0.05, lane_width=3.5, edge_line_p=0.8, zebra_p=0.2, fence_rate=0.2,
                        parked_p=0.5, moving_rate=2.2, ped_scene_p=0.9, ped_rate=2.8, bike_p=0.35,
                        lamp_p=0.9, lamp_h=(6.0, 9.0), sign_rate=1.8, street_tree_p=1.0, tree_step=(8, 14),
                        clutter_rate=1.5),
    # a wide multi-lane road: narrow pavements, buildings set far back behind
    # verges, guard rails, big signs, tall lamps; no cyclists, few pedestrians
    "arterial": Layout(road_half=(6.0, 11.0), pave_width=(0.8, 2.0), setback=(6.0, 25.0), verge="grass",
                       z_end=(150.0, 400.0), side_tree_p=0.3, facade_len=(15, 40), facade_h=(5, 14), gap_p=0.5,
                       gap_len=(10, 40), window_p=0.6, end_tree_p=0.5, end_void_p=0.1, lane_width=3.6,
                       edge_line_p=1.0, zebra_p=0.0, fence_rate=0.3, guard_rail_p=0.7, parked_p=0.0,
                       moving_rate=3.0, ped_scene_p=0.25, ped_rate=0.8, bike_p=0.0, lamp_p=0.8,
                       lamp_h=(9.0, 13.0), lamp_step=(25, 40), sign_rate=0.8, big_sign_rate=1.2,
                       street_tree_p=0.1, clutter_rate=0.3, hood_p=0.3),
    # big boxy sheds with few windows, chain-link fences, yards of void clutter
    "industrial": Layout(road_half=(3.0, 6.0), pave_width=(1.0, 3.0), setback=(0.0, 6.0), verge="gravel", z_end=(60.0, 200.0),
                         side_tree_p=0.05, facade_len=(15, 40), facade_h=(5, 12), gap_p=0.25, gap_len=(5, 15),
                         window_p=0.3, palette="industrial", end_tree_p=0.1, end_void_p=0.35, lane_p=0.6,
                         edge_line_p=0.2, zebra_p=0.0, fence_rate=2.5, fence_back_p=0.8, fence_h=(1.8, 2.5),
                         parked_p=0.4, moving_rate=0.6, ped_scene_p=0.4, ped_rate=0.8, bike_p=0.05,
                         lamp_p=0.5, sign_rate=1.0, street_tree_p=0.05, clutter_rate=6.0, clutter_scale=1.8),
    # a narrow lane between verges and tree lines, a few low houses set back
    "village": Layout(road_half=(2.0, 3.2), pave_width=(0.8, 1.5), setback=(2.0, 10.0), verge="grass",
                      z_end=(80.0, 250.0), side_tree_p=0.6, facade_len=(6, 12), facade_h=(3, 8), gap_p=0.5,
                      gap_len=(8, 25), window_p=0.85, palette="village", end_tree_p=0.8, end_void_p=0.03,
                      lane_p=0.4, edge_line_p=0.0, zebra_p=0.0, fence_rate=1.0, fence_back_p=0.9,
                      parked_p=0.15, moving_rate=0.3, ped_scene_p=0.35, ped_rate=0.8, bike_p=0.2,
                      lamp_p=0.25, sign_rate=0.7, street_tree_p=0.5, clutter_rate=0.8),
}

DEFAULT_LAYOUT = Layout()

#: The classes a scene type never draws (the rest it draws in some scenes).
ABSENT = {"arterial": ("Bicyclist",)}
