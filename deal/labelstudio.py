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
from collections.abc import Iterable, Mapping, Sequence
from xml.sax.saxutils import quoteattr

import numpy as np

LOCAL_FILES = "/data/local-files/?d="  # Label Studio's URL for a file below LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT


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

    def __init__(self, data: Sequence[int]):
        self.data = bytes(int(v) & 0xFF for v in data)
        self.position = 0

    def read(self, width: int) -> int:
        value = 0
        for _ in range(width):
            byte = self.data[self.position >> 3]
            value = (value << 1) | ((byte >> (7 - (self.position & 7))) & 1)
            self.position += 1
        return value


def decode_rle(rle: Sequence[int]) -> np.ndarray:
    """A brush result's `rle` -> flat uint8 RGBA values (height * width * 4; the alpha is the stroke).

    The stream: 32 bits of length, 5 bits of word size - 1, four 4-bit run-length widths - 1;
    then chunks: 1 bit (1: a run of one repeated word, 0: literal words), 2 bits choosing a
    run-length width, the run length - 1, then the word(s)."""
    bits = _Bits(rle)
    total = bits.read(32)
    word = bits.read(5) + 1
    widths = [bits.read(4) + 1 for _ in range(4)]
    out = np.zeros(total, dtype=np.uint8)
    i = 0
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


def _polygon_mask(points: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Polygon points in % of the image (Label Studio's unit) -> H x W bool: the pixels whose
    centres lie inside."""
    from matplotlib.path import Path as Outline

    outline = Outline([(x * width / 100.0, y * height / 100.0) for x, y in points])
    rows, cols = np.mgrid[0:height, 0:width]
    centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
    return outline.contains_points(centres).reshape(height, width)


def annotation_mask(results: Iterable[Mapping], class_index: Mapping[str, int], void_index: int) -> np.ndarray:
    """One annotation's results -> H x W uint8 class ids, painted in order (a later stroke over an
    earlier one), void where nothing is painted. ValueError names what does not fit."""
    mask = None
    for result in results:
        kind = result.get("type")
        if kind not in ("brushlabels", "polygonlabels"):
            continue
        height, width = int(result["original_height"]), int(result["original_width"])
        if mask is None:
            mask = np.full((height, width), void_index, dtype=np.uint8)
        elif mask.shape != (height, width):
            raise ValueError(f"results of {width}x{height} and {mask.shape[1]}x{mask.shape[0]} pixels in one annotation")
        value = result["value"]
        names = value.get(kind) or []
        if len(names) != 1:
            raise ValueError(f"a {kind} region with labels {names}; give each region one class")
        if names[0] not in class_index:
            raise ValueError(f"label {names[0]!r} is none of the dataset's classes ({', '.join(class_index)})")
        if kind == "brushlabels":
            rgba = decode_rle(value["rle"])
            if rgba.size != height * width * 4:
                raise ValueError(f"a brush stroke of {rgba.size} values for {width}x{height} pixels")
            painted = rgba.reshape(height, width, 4)[..., 3] >= 128  # stroke edges are anti-aliased
        else:
            painted = _polygon_mask(value["points"], height, width)
        mask[painted] = class_index[names[0]]
    if mask is None:
        raise ValueError("no brush or polygon region")
    return mask


def masks_from_export(export: Sequence[Mapping], class_names: Sequence[str], void_index: int) -> dict[str, np.ndarray]:
    """Label Studio's JSON export of `tasks` -> {task's `mask` path: H x W uint8 class ids}, from
    each task's latest annotation that was not cancelled; tasks nobody annotated are left out.
    ValueError names the task that does not fit."""
    index = {name: i for i, name in enumerate(class_names)}
    out = {}
    for task in export:
        data = task.get("data") or {}
        name = data.get("mask")
        if not name:
            raise ValueError(f"task {task.get('id')}: no 'mask' in its data; import the tasks.json deal wrote")
        done = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not done:
            continue
        latest = max(done, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
        try:
            out[name] = annotation_mask(latest.get("result") or [], index, void_index)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"task {task.get('id')} ({data.get('id', name)}): {exc}") from None
    return out
