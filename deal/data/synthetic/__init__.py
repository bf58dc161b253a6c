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

Modules: ``canvas`` (class indices, noise, the paint buffers and the camera),
``objects`` (the object painters), ``scene`` (``generate_scene``: the static
world and the finish), ``writer`` (PNG encoding, ``write_synthetic``,
``SyntheticStreets``), ``cli`` (figure, class shares, bench, the command line),
``conditions`` (the long-tailed per-scene conditions: lighting, weather,
scene type, camera, and each scene type's layout) and ``look`` (what
lighting and weather do to a scene).

``generate_scene(..., conditions="long_tail")`` draws each scene's
conditions from long-tailed tables (``draw_conditions``); the default
``"none"`` gives the scenes as they were before conditions existed.
"""

from __future__ import annotations

from .canvas import BICYCLIST, BUILDING, CAR, FENCE, PAVEMENT, PEDESTRIAN, POLE, ROAD, SIGN, SKY, TREE, VOID
from .cli import bench, class_shares, covering_indices, main, save_figure
from .conditions import (CAMERA_RANGES, CAMERAS, CONDITION_SETS, LAYOUTS, LIGHTING, SCENE_TYPES, TABLES, WEATHER,
                         Conditions, draw_conditions)
from .objects import P_BICYCLIST
from .scene import DEFAULT_SIZE, SPLIT_OFFSETS, SYNTHETIC_INFO, generate_scene
from .writer import CONDITION_COLUMNS, SyntheticStreets, encode_png, read_conditions, write_synthetic

__all__ = [
    "SKY", "BUILDING", "POLE", "ROAD", "PAVEMENT", "TREE", "SIGN", "FENCE", "CAR", "PEDESTRIAN", "BICYCLIST", "VOID",
    "SYNTHETIC_INFO", "SPLIT_OFFSETS", "P_BICYCLIST", "DEFAULT_SIZE",
    "generate_scene", "encode_png", "write_synthetic", "SyntheticStreets", "read_conditions", "CONDITION_COLUMNS",
    "CONDITION_SETS", "Conditions", "draw_conditions", "TABLES", "LIGHTING", "WEATHER", "SCENE_TYPES", "CAMERAS",
    "CAMERA_RANGES", "LAYOUTS",
    "class_shares", "covering_indices", "save_figure", "bench", "main",
]
