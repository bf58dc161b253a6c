"""Label Studio, the annotation tool a person labels the picks in (no torch, no paths of ours).

Out: `tasks` (the JSON task list Label Studio imports as it is: one task per
pick, its image as a local-files URL, DEAL's difficulty map as a second image)
and `labeling_config` (the project's XML: brush and polygon labels named and
coloured as the dataset's classes).

Back: `masks_from_export` turns Label Studio's JSON export (Export -> JSON) of
those tasks into class-id masks: brush strokes (run-length encoded, decoded by
`decode_rle`) and polygons, painted in the order the annotator drew them, void
where nobody painted. Label Studio's own PNG export writes one binary PNG per
brush region, not a class mask; its decoder lives in label-studio-sdk, whose
install is ~0.5 GB for a 40-line function, so the format is decoded here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from xml.sax.saxutils import quoteattr

import numpy as np

LOCAL_FILES = "/data/local-files/?d="  # Label Studio's URL for a file below LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT


def pick_stem(sample_id: str) -> str:
    """Where a pick's mask (and difficulty map) goes below its folder, without the extension: a
    folder dataset's stem (below images/), or, for the tasks of a simulated run on another
    kind, the id without its extension. The label stage reads the mask there."""
    from pathlib import PurePosixPath

    from deal.data.folder import stem_of

    return stem_of(sample_id) if sample_id.startswith("images/") else PurePosixPath(sample_id).with_suffix("").as_posix()


def local_file_url(relative_path: str) -> str:
    """The URL Label Studio serves a file by, relative to its local-files document root."""
    from urllib.parse import quote

    return LOCAL_FILES + quote(relative_path)


def png_data_url(png: bytes) -> str:
    """A PNG inline in the task: Label Studio's <Image> shows data URLs, and the task file stands alone."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def tasks(picks: Sequence[Mapping]) -> list[dict]:
    """Label Studio's JSON tasks: `{"data": {...}}` per pick. Each pick holds `image` (its URL)
    and any plain fields (id, mask, seed, method, round, score, difficulty), which Label Studio
    shows as columns and keeps in its export, where `masks_from_export` reads `id` and `mask`."""
    return [{"data": dict(pick)} for pick in picks]


def hex_colour(rgb: Sequence[int]) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def labeling_config(class_names: Sequence[str], palette: Sequence[Sequence[int]], difficulty: bool) -> str:
    """The labeling interface: the image with brush and polygon labels, one per class in the
    dataset's colours; with `difficulty`, DEAL's map of the same image beside it (display only)."""
    labels = "".join(f"\n      <Label value={quoteattr(name)} background={quoteattr(hex_colour(rgb))}/>"
                     for name, rgb in zip(class_names, palette))
    second = ('\n  <Header value="DEAL difficulty: bright where the network expects its own errors"/>'
              '\n  <Image name="difficulty" value="$difficulty" zoom="true"/>') if difficulty else ""
    return (
        "<View>\n"
        '  <Header value="$id: paint every class you see; unpainted pixels stay void"/>\n'
        '  <Image name="image" value="$image" zoom="true" zoomControl="true"/>\n'
        f'  <BrushLabels name="brush" toName="image">{labels}\n  </BrushLabels>\n'
        f'  <PolygonLabels name="polygon" toName="image" strokeWidth="2">{labels}\n  </PolygonLabels>{second}\n'
        "</View>\n"
    )


# ---------------------------------------------------------------- back from Label Studio


class _Bits:
    """Label Studio's brush RLE (the rle-pack format): a bit stream read most significant bit first."""

    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def read(self, width: int) -> int:
        value = 0
        for _ in range(width):
            byte = self.data[self.position >> 3]
            value = (value << 1) | ((byte >> (7 - (self.position & 7))) & 1)
            self.position += 1
        return value


def _rle_bytes(rle) -> bytes:
    if not isinstance(rle, (list, tuple)) or not all(type(v) is int and 0 <= v <= 255 for v in rle):
        raise ValueError(f"a brush stroke whose rle is {_kind(rle)}, not a list of bytes (0..255)")
    if len(rle) < 6:
        raise ValueError(f"a brush stroke whose rle of {len(rle)} bytes ends inside its header")
    return bytes(rle)


def rle_length(rle: Sequence[int]) -> int:
    """The number of values a brush result's `rle` declares (its first 32 bits), read without
    decoding: a stroke is checked against its image's size before anything is allocated."""
    return _Bits(_rle_bytes(rle)).read(32)


def decode_rle(rle: Sequence[int]) -> np.ndarray:
    """A brush result's `rle` -> flat uint8 RGBA values (height * width * 4; the alpha is the stroke).

    The stream: 32 bits of length, 5 bits of word size - 1, four 4-bit run-length widths - 1;
    then chunks: 1 bit (1: a run of one repeated word, 0: literal words), 2 bits choosing a
    run-length width, the run length - 1, then the word(s). ValueError for a stream that is
    not one (words wider than a byte, data that ends before its declared length)."""
    bits = _Bits(_rle_bytes(rle))
    total = bits.read(32)
    word = bits.read(5) + 1
    if word > 8:
        raise ValueError(f"a brush stroke of {word}-bit words; Label Studio writes bytes (8)")
    widths = [bits.read(4) + 1 for _ in range(4)]
    out = np.zeros(total, dtype=np.uint8)
    i = 0
    try:
        while i < total:
            repeated = bits.read(1)
            end = min(total, i + 1 + bits.read(widths[bits.read(2)]))
            if repeated:
                out[i:end] = bits.read(word)
                i = end
            else:
                while i < end:
                    out[i] = bits.read(word)
                    i += 1
    except IndexError:
        raise ValueError(f"a brush stroke whose rle ends after {i} of its {total} values; export it again") from None
    return out


def encode_rle(values: np.ndarray, word: int = 8) -> list[int]:
    """The inverse of `decode_rle` (runs of equal words, literal words between them): for tests,
    and for pre-annotations (a prediction Label Studio shows the annotator to correct)."""
    values = np.asarray(values, dtype=np.uint8).ravel()
    widths = (3, 6, 9, 15)  # the run-length widths in bits, as Label Studio's encoder picks them
    longest = 1 << widths[-1]
    bits: list[int] = []

    def write(value: int, width: int) -> None:
        bits.extend((int(value) >> k) & 1 for k in range(width - 1, -1, -1))

    write(len(values), 32)
    write(word - 1, 5)
    for width in widths:
        write(width - 1, 4)
    i, n = 0, len(values)
    while i < n:
        j = i + 1
        if j < n and values[j] == values[i]:  # a run of one repeated word
            while j < n and values[j] == values[i] and j - i < longest:
                j += 1
            chunk = values[i:i + 1]
        else:  # literal words, up to where the next run starts
            while j < n and j - i < longest and not (j + 1 < n and values[j] == values[j + 1]):
                j += 1
            chunk = values[i:j]
        sizer = next(k for k, width in enumerate(widths) if j - i - 1 < (1 << width))
        write(int(len(chunk) == 1 and j - i > 1), 1)
        write(sizer, 2)
        write(j - i - 1, widths[sizer])
        for v in chunk:
            write(v, word)
        i = j
    bits += [0] * (-len(bits) % 8)
    return [int("".join(map(str, bits[k:k + 8])), 2) for k in range(0, len(bits), 8)]


def _kind(value) -> str:
    """How a value of the wrong type is named in an error line."""
    return "null" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"


def _polygon_mask(points, height: int, width: int) -> np.ndarray:
    """Polygon points in % of the image (Label Studio's unit) -> H x W bool: the pixels whose
    centres lie inside. ValueError for points that are no polygon."""
    from matplotlib.path import Path as Outline

    number = (int, float)
    if not isinstance(points, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, number) and not isinstance(v, bool) for v in p)
            for p in points):
        raise ValueError(f"polygon points {str(points)[:60]}; a list of [x, y] in % of the image")
    if len(points) < 3:
        raise ValueError(f"a polygon of {len(points)} point{'s' * (len(points) != 1)}; a region needs 3 or more")
    xy = np.array(points, dtype=float)
    if not np.isfinite(xy).all():
        raise ValueError(f"a polygon with a point that is no number ({str(points)[:60]})")
    outline = Outline(np.stack([xy[:, 0] * width / 100.0, xy[:, 1] * height / 100.0], axis=1))
    rows, cols = np.mgrid[0:height, 0:width]
    centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
    return outline.contains_points(centres).reshape(height, width)


def annotation_mask(results, class_index: Mapping[str, int], void_index: int, size: tuple[int, int]) -> np.ndarray:
    """One annotation's results -> H x W uint8 class ids at `size` (its image's (height, width)),
    painted in order (a later stroke over an earlier one), void where nothing is painted.
    Polygons (in % of the image) are drawn at that size; a brush stroke must have been drawn
    on an image of that size. ValueError names what does not fit: a region of the wrong type,
    no class or another one, a stroke of another size, a polygon of fewer than 3 points or
    one with points that are no numbers, a region that paints no pixel (outside the image)."""
    if not isinstance(results, list):
        raise ValueError(f"its result is {_kind(results)}, not a list of regions")
    height, width = size
    mask = np.full((height, width), void_index, dtype=np.uint8)
    regions = 0
    for result in results:
        if not isinstance(result, Mapping):
            raise ValueError(f"a result that is {_kind(result)}, not a region (an object)")
        kind = result.get("type")
        if kind not in ("brushlabels", "polygonlabels"):
            continue
        value = result.get("value")
        if not isinstance(value, Mapping):
            raise ValueError(f"a {kind} region whose value is {_kind(value)}, not an object")
        names = value.get(kind)
        if not (isinstance(names, list) and len(names) == 1 and isinstance(names[0], str)):
            raise ValueError(f"a {kind} region with labels {names}; give each region one class")
        if names[0] not in class_index:
            raise ValueError(f"label {names[0]!r} is none of the dataset's classes ({', '.join(class_index)})")
        if kind == "brushlabels":
            drawn = (result.get("original_width"), result.get("original_height"))
            if drawn != (width, height):
                raise ValueError(f"a brush stroke drawn on a {drawn[0]}x{drawn[1]} image (original_width x "
                                 f"original_height), but its image is {width}x{height}; paint on the image deal exported")
            declared = rle_length(value.get("rle"))
            if declared != height * width * 4:  # before decoding: a forged length would allocate it
                raise ValueError(f"a brush stroke of {declared} values for {width}x{height} pixels")
            painted = decode_rle(value["rle"]).reshape(height, width, 4)[..., 3] >= 128  # stroke edges are anti-aliased
            what = "brush stroke"
        else:
            painted = _polygon_mask(value.get("points"), height, width)
            what = "polygon"
        if not painted.any():
            raise ValueError(f"a {names[0]} {what} paints no pixel of the {width}x{height} image (outside it, or "
                             "narrower than a pixel); draw it over the pixels it labels")
        mask[painted] = class_index[names[0]]
        regions += 1
    if not regions:
        raise ValueError("no brush or polygon region")
    return mask


def masks_from_export(export, class_names: Sequence[str], void_index: int,
                      image_size: Callable[[str], tuple[int, int]]) -> dict[str, np.ndarray]:
    """Label Studio's JSON export of `tasks` -> {task's `mask` path: H x W uint8 class ids}, from
    each task's latest annotation that was not cancelled, at the size of the task's image
    (`image_size(its data's id)`: (height, width), ValueError if there is none); tasks nobody
    annotated are left out. Everything is checked before it returns: ValueError names the
    task that does not fit (a task, its data or an annotation of the wrong type, no id or
    mask path, two annotated tasks naming one mask, a region as `annotation_mask` says)."""
    index = {name: i for i, name in enumerate(class_names)}
    out: dict[str, np.ndarray] = {}
    named: dict[str, str] = {}  # mask -> the task that painted it
    fix = "import the tasks.json deal wrote"
    for position, task in enumerate(export, start=1):
        if not isinstance(task, Mapping):
            raise ValueError(f"entry {position} of the export is {_kind(task)}, not a task (an object)")
        label = f"task {task.get('id')}"
        data = task.get("data")
        if not isinstance(data, Mapping):
            raise ValueError(f"{label}: its data is {_kind(data)}, not an object; {fix}")
        sid, name = data.get("id"), data.get("mask")
        if not name:
            raise ValueError(f"{label}: no 'mask' in its data; {fix}")
        if not isinstance(name, str) or "\0" in name:
            raise ValueError(f"{label}: its mask is {_kind(name)}, not a path; {fix}")
        if not isinstance(sid, str) or not sid or "\0" in sid:
            raise ValueError(f"{label}: its data's id is {_kind(sid)}, not the image's id; {fix}")
        label = f"task {task.get('id')} ({sid})"
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list) or not all(isinstance(a, Mapping) for a in annotations):
            raise ValueError(f"{label}: its annotations are {_kind(annotations)}, not a list of objects; "
                             "export the project as JSON (Export -> JSON)")
        done = [a for a in annotations if not a.get("was_cancelled")]
        if not done:
            continue
        if name in named:
            raise ValueError(f"{named[name]} and {label} both name the mask {name}; keep one of the two "
                             "annotations (delete the other task in Label Studio) and export again")
        named[name] = label
        latest = max(done, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""),
                                          a.get("id") if isinstance(a.get("id"), int) else 0))
        try:
            out[name] = annotation_mask(latest.get("result") or [], index, void_index, image_size(sid))
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
    return out
