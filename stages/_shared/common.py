"""What every stage script shares: params, paths, atomic writes, loading.

Only the standard library and numpy at import time: stages that need
no torch (init, select, report) stay fast. Torch is imported inside the
functions that need it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

from deal import atomic  # noqa: E402
from deal.atomic import clear_stale  # noqa: E402,F401  (the stages' writes)
from deal.config import ParamsError, ParamsReadError, check_params, known_train_size, parse_params, schedule  # noqa: E402

# Every path a stage reads or writes is named in dvc.yaml and passed on the command line;
# the one exception is not a DVC output: the last-epoch checkpoints of interrupted runs.
RESUME = Path("runs/.resume")
_prepared: Path | None = None  # the prepared arrays (--prepared), set by parse_stage_args


def fail(lines) -> None:
    """Stop the stage: one line per problem, exit status 1, nothing written. (Said once on several
    processes: deal.launch.report_failure.)"""
    from deal.launch import report_failure

    report_failure("".join(f"error: {line}\n" for line in ([lines] if isinstance(lines, str) else lines)))
    sys.exit(1)


_read: dict = {}  # (path, mtime, size) -> parsed: a stage reads params.yaml and its stage file more than once


def read_params(path: str | Path = "params.yaml"):
    """The params file as DVC reads it (deal.config.parse_params), unchecked; a file DVC would not read stops."""
    import copy

    try:
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
        if key not in _read:
            _read[key] = parse_params(Path(path).read_text())
        return copy.deepcopy(_read[key])
    except OSError as exc:
        fail(f"{path}: cannot read params ({exc.strerror}); run from the repository root, or restore it (git checkout {path})")
    except ParamsReadError as exc:
        fail(f"{path}: {exc}")


def load_params(path: str | Path = "params.yaml", with_train_size: bool = True, disk: bool = False) -> dict:
    """params.yaml, validated; the budget checks run where the train split's size is known
    (the embedded generator's params, or the prepared data), and the limits with the prepared
    data's split sizes and classes where it exists. `disk`: also the disk the run will fill
    (the first stages of a run: generate, prepare)."""
    params = read_params(path)
    train_size = known_train_size(params) if isinstance(params, dict) else None
    counts = num_classes = None
    if with_train_size and _prepared is not None and (_prepared / "ids.json").is_file():
        ids = read_json(_prepared / "ids.json")
        counts = {split: len(ids.get(split, [])) for split in ("train", "val", "test")}
        train_size = train_size if train_size is not None else counts["train"]
        if (_prepared / "info.json").is_file():
            num_classes = read_json(_prepared / "info.json").get("num_classes")
    try:
        check_params(params, train_size=train_size, counts=counts, num_classes=num_classes, disk=disk)
    except ParamsError as exc:
        fail(exc.lines)
    sweep_stale()
    return params


def unreadable(path: str | Path, exc: BaseException) -> None:
    """Stop on a truncated or corrupt input: one line naming it and the fix."""
    reason = (str(exc).strip().splitlines() or [""])[0][:160]
    fail(f"{path}: unreadable, truncated or corrupt ({type(exc).__name__}: {reason}); "
         f"restore it with `dvc checkout -f {path}`, or delete it and rerun `dvc repro`")


def missing(path: str | Path) -> None:
    fail(f"{path}: missing; run `dvc repro` (or `dvc pull`) so the stage that writes it runs")


# ---------------------------------------------------------------- atomic writes


_writing = 0  # writers open: a failed write inside another writer's folder names that folder


@contextmanager
def _stage_write(writer):
    """A deal.atomic writer for a stage: a write that fails (disk full, quota, ...) stops the stage
    with its one line, naming the outermost target; the temporary is removed, the target as it was."""
    global _writing
    _writing += 1
    try:
        with writer as tmp:
            yield tmp
    except atomic.WriteError as exc:
        if _writing > 1:
            raise  # the writer around this one names its own target
        fail(str(exc))
    finally:
        _writing -= 1


def atomic_path(path: str | Path):
    return _stage_write(atomic.atomic_path(path))


def atomic_dir(path: str | Path):
    return _stage_write(atomic.atomic_dir(path))


OUTPUT_ROOTS = ("data", "runs", "metrics", "figures")


def sweep_stale(root: str | Path = ".") -> list[Path]:
    """Remove every temporary a killed writer left under the output folders; return them.

    Run by each stage before it writes and by the stage host when DVC is done,
    so that a leftover of a stage whose rerun DVC served from its run-cache
    (no code of ours ran) goes too.
    """
    return atomic.sweep_stale(Path(root) / top for top in OUTPUT_ROOTS)


def write_json(path: str | Path, payload) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        missing(path)
    except (OSError, ValueError) as exc:
        unreadable(path, exc)


def read_npy(path: str | Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        missing(path)
    except (OSError, ValueError, EOFError) as exc:
        unreadable(path, exc)


def read_scores(path: str | Path) -> list[tuple[str, float]]:
    """A score stage's scores.csv: (id, score) rows, highest first."""
    try:
        with open(path, newline="") as f:
            return [(row["id"], float(row["score"])) for row in csv.DictReader(f)]
    except FileNotFoundError:
        missing(path)
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as exc:
        unreadable(path, exc)


class _PythonWrites:
    """A file numpy writes to through Python's `write`: its own path for real files reports a
    short write (a full disk) without the error's errno, so it could not be told from others."""

    def __init__(self, file):
        self.write = file.write


def write_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(_PythonWrites(f), array)


def save_state(path: str | Path, state: dict) -> None:
    """torch.save through memory: saved to a file, the archive's folder is
    named after the (random) temporary file, so equal weights would hash apart."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_state(path: str | Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        missing(path)
    except Exception as exc:  # torch raises several kinds for a truncated or foreign file
        unreadable(path, exc)
    if not isinstance(state, dict):
        unreadable(path, TypeError(f"holds a {type(state).__name__}, not a state dict"))
    return state


# ---------------------------------------------------------------- resume checkpoints


def code_digest() -> str:
    """The library's and the stage scripts' sources and torch's version: what a resumed run must share."""
    import torch

    h = hashlib.sha256(torch.__version__.encode())
    for pattern in ("deal/**/*.py", "deal/**/*.c", "stages/**/*.py"):
        for file in sorted(ROOT.glob(pattern)):
            h.update(file.relative_to(ROOT).as_posix().encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


def run_key(**parts) -> str:
    """A digest of everything that determines a training run: its configs (plain
    values and dataclasses), its input tensors (images, masks, weights) and the code."""
    import dataclasses

    import torch

    h = hashlib.sha256(code_digest().encode())
    for name in sorted(parts):
        value = parts[name]
        h.update(name.encode() + b"\0")
        if dataclasses.is_dataclass(value):
            value = dataclasses.asdict(value)
        tensors = value if isinstance(value, dict) and value and all(torch.is_tensor(v) for v in value.values()) else None
        if torch.is_tensor(value):
            tensors = {"": value}
        if tensors is not None:
            for key in sorted(tensors):
                t = tensors[key].detach().cpu().contiguous()
                h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(json.dumps(value, sort_keys=True, default=str).encode())
    return h.hexdigest()


def runtime(params: dict) -> dict:
    """What a run resolves at run time and a checkpoint must share: the device and
    precision `auto` picked here, the threads, torchvision's version."""
    import torch
    import torchvision
    from deal.runtime import resolve_device, resolve_precision

    device = resolve_device(params["train"]["device"])
    return {"device": str(device), "precision": str(resolve_precision(params["train"]["precision"], device)),
            "threads": params["train"]["threads"] or torch.get_num_threads(), "torchvision": torchvision.__version__}


_ITEM_FIELDS = {"item.seed": "seed", "item.m": "method", "item.r.id": "round", "item.s.cur": "round",
                "item.s.next": "next", "item.f": "format", "item.kind": "kind"}


def declared_params(kind: str, identity: dict | None = None) -> list[str]:
    """The params stage `kind` declares in its stage file (`params:`; `method_cfg.${item.m}` filled in from
    the stage's identity): what DVC reruns the stage for."""
    import re

    keys = []
    for entry in stage_definition(kind).get("params", []):
        # `key`, or `{file: [keys]}` (`{file: null}`: the whole file, as the key "")
        names = [entry] if isinstance(entry, str) else [k for v in entry.values() for k in (v if v else [""])]
        for key in names:
            keys.append(re.sub(r"\$\{(item\.[a-z.]+)\}", lambda m: str((identity or {})[_ITEM_FIELDS[m.group(1)]]), key))
    return keys


def stage_params(params: dict, kind: str, identity: dict | None = None) -> dict:
    """The values of the params stage `kind` declares (declared_params): everything of params.yaml that
    determines its outputs, as DVC sees it, for a resume key that no hand-kept list can leave a param out of."""
    values = {}
    for key in declared_params(kind, identity):
        node = params
        for name in filter(None, key.split(".")):
            node = node.get(name) if isinstance(node, dict) else None
        values[key] = node
    return values


class Resume:
    """The last-epoch checkpoint of one stage's run, in runs/.resume/<name>.pt.

    It resumes only the run it came from: it carries the run's key (run_key)
    and is ignored, with one line, when the key differs or the file does not
    load; `done` removes it once the stage's outputs are written.
    """

    def __init__(self, name: str, key: str, stage: str):
        self.path, self.key, self.stage = RESUME / f"{name}.pt", key, stage

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        import torch

        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            found = state.get("run_key") if isinstance(state, dict) else None
        except Exception as exc:  # truncated or foreign: start over rather than fail every rerun
            print(f"{self.stage}: ignoring {self.path}: unreadable ({type(exc).__name__}); starting from epoch 0")
            self.path.unlink(missing_ok=True)
            return None
        if found != self.key:
            print(f"{self.stage}: ignoring {self.path}: written by another run (its params, inputs or code differ); "
                  "starting from epoch 0")
            self.path.unlink(missing_ok=True)
            return None
        print(f"{self.stage}: resuming from epoch {state['epoch']} ({self.path})")
        return state

    def save(self, state: dict) -> None:
        save_state(self.path, {**state, "run_key": self.key})

    def done(self) -> None:
        self.path.unlink(missing_ok=True)
        clear_stale(self.path)


def file_sha256(path: str | Path) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        missing(path)


def copy_file(src: str | Path, dst: str | Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


# ---------------------------------------------------------------- the prepared data


def prepared() -> Path:
    """The prepared arrays' folder this stage was given (--prepared)."""
    if _prepared is None:
        raise RuntimeError("this stage was not given --prepared")
    return _prepared


def dataset_info() -> dict:
    return read_json(prepared() / "info.json")


def split_ids(split: str) -> list[str]:
    return read_json(prepared() / "ids.json")[split]


def load_split(split: str, ids: list[str] | None = None):
    """uint8 tensors (images N x 3 x H x W, masks N x H x W) of `split`, in `ids` order."""
    import torch

    images = read_npy(prepared() / f"{split}_images.npy", mmap=True)
    masks = read_npy(prepared() / f"{split}_masks.npy", mmap=True)
    if ids is not None:
        position = {sid: i for i, sid in enumerate(split_ids(split))}
        missing = [sid for sid in ids if sid not in position]
        if missing:
            fail(f"{prepared() / 'ids.json'}: {missing[0]} is not in the {split} split; rerun `dvc repro prepare`")
        order = np.array([position[sid] for sid in ids], dtype=np.int64)
        images, masks = images[order], masks[order]
    # np.array copies out of the read-only memory map
    return torch.from_numpy(np.array(images)), torch.from_numpy(np.array(masks))


def unmasked_ids() -> list[str]:
    """The train images without a mask in the dataset (oracle: human: the pool a person labels;
    empty otherwise), sorted."""
    return read_json(prepared() / "unmasked.json")["train"]


def answered_ids(labeled: list[str], unmasked: list[str]) -> list[str]:
    """The labeled ids whose masks the oracle's answers hold (those the dataset has none of), in the
    answers' row order (sorted)."""
    missing = set(unmasked)
    return sorted(sid for sid in labeled if sid in missing)


def load_labeled(pool, answers: str | Path):
    """The labeled pool as uint8 tensors (images, masks): the dataset's masks, and for the images
    a person labelled (oracle: human) the masks the label stage imported into `answers` (N x H x W,
    rows in `answered_ids` order; an empty array when the dataset's masks answered)."""
    import torch

    images, masks = load_split("train", pool.labeled)
    rows = answered_ids(pool.labeled, unmasked_ids())
    found = read_npy(answers)
    if found.ndim != 3 or len(found) != len(rows) or (rows and tuple(found.shape[1:]) != tuple(masks.shape[1:])):
        fail(f"{answers}: holds {tuple(found.shape)} masks but the pool has {len(rows)} labelled by a person "
             f"at {tuple(masks.shape[1:])}; rerun `dvc repro` so the label stage writes them again")
    if rows:
        position = {sid: i for i, sid in enumerate(pool.labeled)}
        masks[[position[sid] for sid in rows]] = torch.from_numpy(found)
    return images, masks


def read_pool(path: str | Path):
    from deal.data.pools import Pool

    try:
        return Pool.from_dict(read_json(path))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        unreadable(path, exc)


def round_index(params: dict, round_id: str) -> int:
    ids = [r["id"] for r in params["rounds"]]
    if round_id not in ids:
        fail(f"params.yaml: rounds: no round {round_id!r}; the stage and params disagree, run `dvc repro` again")
    return ids.index(round_id)


def check_seed(params: dict, seed: int) -> int:
    """The stage's seed, which must be one of params.yaml's seeds (the stage files iterate over them)."""
    if seed not in params["seeds"]:
        fail(f"params.yaml: seeds: {params['seeds']} has no seed {seed}; the stage and params disagree, "
             "run `dvc repro` again (or add the seed)")
    return seed


# ---------------------------------------------------------------- which stage this is

# DVC sets it for every stage command it runs: the stage's address, `[dvc file:]name` (dvc/stage/run.py)
STAGE_ENV = "DVC_STAGE"
# what a per-(seed, method, round) stage is: the values of its matrix item (the stage files' matrix keys:
# seed, m, r ({id}), s ({cur, next}), f, kind)
IDENTITY = ("seed", "method", "round", "next", "format", "kind")


def stage_file(kind: str) -> Path:
    """The stage file that defines stage `kind`: rounds/<kind>/dvc.yaml, another kind's file under rounds/
    (export_deal is in rounds/export/dvc.yaml), or the top-level dvc.yaml."""
    own = ROOT / "rounds" / kind / "dvc.yaml"
    for path in [own, *sorted((ROOT / "rounds").glob("*/dvc.yaml")), ROOT / "dvc.yaml"]:
        if path.is_file() and kind in (read_params(path).get("stages") or {}):
            return path
    return ROOT / "dvc.yaml"


def stage_definition(kind: str) -> dict:
    """Stage `kind`'s entry in its stage file, as DVC reads the file (its `${...}` not resolved)."""
    path = stage_file(kind)
    spec = (read_params(path).get("stages") or {}).get(kind)
    if not isinstance(spec, dict):
        fail(f"{path.relative_to(ROOT)}: defines no stage {kind!r}; restore it (git checkout {path.relative_to(ROOT)})")
    return spec


def _resolve(value, params: dict):
    """A matrix entry of a stage file: a literal list, or `${dotted.name}` of params.yaml."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        node = params
        for name in value[2:-1].split("."):
            node = node[name]
        return node
    return value


def matrix_items(params: dict, kind: str) -> dict[str, dict]:
    """Every stage of the matrix stage `kind`, as DVC names and resolves them (dvc/parsing MatrixDefinition:
    `kind@` and one fragment per matrix key, the value itself, or key and index for a mapping or list)."""
    import itertools

    matrix = {key: _resolve(value, params) for key, value in stage_definition(kind).get("matrix", {}).items()}
    items = {}
    for combination in itertools.product(*(list(enumerate(v)) for v in matrix.values())):
        fragments = [f"{key}{i}" if isinstance(v, (dict, list)) else ({True: "true", False: "false"}.get(v, str(v))
                     if isinstance(v, bool) else str(v)) for key, (i, v) in zip(matrix, combination)]
        items[f"{kind}@{'-'.join(fragments)}"] = {key: v for key, (_, v) in zip(matrix, combination)}
    return items


def identity_of(item: dict) -> dict:
    """A matrix item as the stage's identity: seed, method, round, next, format, kind."""
    found = {}
    for key, value in item.items():
        if key == "r":
            found["round"] = value["id"]
        elif key == "s":
            found["round"], found["next"] = value["cur"], value["next"]
        else:
            found[{"m": "method", "f": "format"}.get(key, key)] = value
    return found


def stage_identity(params: dict, kinds: tuple[str, ...], name: str) -> tuple[str, dict]:
    """(kind, identity) of the stage named or addressed `name` (`train@0-deal_de-r1`, or DVC's address
    `rounds/train/dvc.yaml:train@0-deal_de-r1`), one of `kinds`, among the stages params.yaml makes."""
    for kind in kinds:
        for stage, item in matrix_items(params, kind).items():
            if name == stage or name.endswith(":" + stage):
                return kind, identity_of(item)
    fail(f"params.yaml: no {' or '.join(kinds)} stage {name!r} with these params (seeds, methods, rounds, steps, "
         "export); run it through `dvc repro`, which names it, after changing them")


def stage_parser(doc: str, per_round: bool = True, with_next: bool = False, with_prepared: bool = True,
                 kinds: tuple[str, ...] | None = None, **paths: str) -> argparse.ArgumentParser:
    """A stage's arguments: --prepared, and one required path per keyword (`pool="its pool"` gives
    --pool PATH); a per-round stage (`per_round`, or `kinds`: the matrix stages it runs) also knows which
    stage it is: from DVC ($DVC_STAGE), --stage NAME, or --seed, --method, --round (and --next).

    The stage files' commands carry no value of params.yaml (DVC would paste it into a shell command
    unquoted): a path is a template, `runs/seed{seed}/{method}/{round}/model.pt`, filled in here from the
    stage's identity once params.yaml has been checked and the identity found among its stages.
    dvc.yaml names every path once, in the stage's deps, outs and command."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if per_round or kinds:
        parser.set_defaults(_kinds=kinds or (Path(sys.argv[0]).stem,))
        parser.add_argument("--stage", help=f"the stage's name, as `dvc repro` prints it (default: ${STAGE_ENV}, "
                                            "which DVC sets)")
        parser.add_argument("--seed", type=int, help="the active-learning seed (one of params.yaml's seeds)")
        parser.add_argument("--method")
        parser.add_argument("--round")
        if with_next:
            parser.add_argument("--next", help="the round whose pool this step writes or reads")
    if with_prepared:
        parser.add_argument("--prepared", type=Path, required=True, help="the prepared arrays (the prepare stage's output)")
    for name, what in paths.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True, help=what)
    return parser


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """argparse's usage errors as one line, after the params' own problems (a bad param is the likelier cause)."""
    def error(message: str):
        params = read_params()
        try:
            check_params(params)
        except ParamsError as exc:
            fail(exc.lines)
        fail(f"{parser.prog}: {message}; see python stages/{parser.prog} --help")

    parser.error = error


def parse_stage_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The stage's arguments; a per-round stage's identity checked against params.yaml and its path
    templates filled in from it."""
    _one_line_errors(parser)
    args = parser.parse_args()
    kinds = getattr(args, "_kinds", None)
    if kinds:
        resolve_identity(args, kinds)
    if getattr(args, "prepared", None) is not None:
        use_prepared(args.prepared)
    return args


def resolve_identity(args: argparse.Namespace, kinds: tuple[str, ...]) -> None:
    """Set args.seed, .method, .round, .next, .format, .kind (those the stage has, None for the others) and
    args.stage_kind, and fill the path templates: from the stage DVC names ($DVC_STAGE) or --stage, or the
    values given by hand, which must be those of one of the stages params.yaml makes."""
    params = read_params()
    try:  # the lists the identity is looked up in, before any value of them is used
        check_params(params)
    except ParamsError as exc:
        fail(exc.lines)
    given = {name: getattr(args, name) for name in IDENTITY if getattr(args, name, None) is not None}
    name = args.stage or (None if given else os.environ.get(STAGE_ENV))
    if name:
        kind, found = stage_identity(params, kinds, name)
    elif not given:
        fail(f"stages/{Path(sys.argv[0]).name}: which stage? run it through `dvc repro` (DVC sets ${STAGE_ENV}), "
             "or give --stage NAME (as `dvc repro` prints it)")
    else:
        match = [(k, identity_of(item)) for k in kinds for item in matrix_items(params, k).values()
                 if identity_of(item) == given]
        if not match:
            shown = " ".join(f"--{k} {v}" for k, v in given.items())
            fail(f"params.yaml: no {' or '.join(kinds)} stage is {shown} with these params (seeds, methods, rounds, "
                 "steps, export); give the values of one of them, or --stage NAME")
        kind, found = match[0]
    args.stage_kind = kind
    for field in IDENTITY:
        setattr(args, field, found.get(field))
    for key, value in vars(args).items():
        if isinstance(value, Path) and "{" in str(value):
            try:
                setattr(args, key, Path(str(value).format(**found)))
            except (KeyError, IndexError, ValueError) as exc:
                where = stage_file(kind).relative_to(ROOT)
                fail(f"--{key.replace('_', '-')} {value}: a path template with {exc!s}, which stage {kind} does not "
                     f"have; restore its stage file (git checkout {where})")


def use_prepared(path: str | Path) -> None:
    """Read the prepared arrays from `path` (stages: --prepared; tools such as bench/ scripts: their own option)."""
    global _prepared
    _prepared = Path(path)


def checkpoint_rule():
    """The validation split a training keeps its best checkpoint on, and the rule in words.
    Validation on the test images would pick the checkpoint on the test set: then, as with
    no validation split, the last epoch's weights are kept. (InMemorySegmentation or None, str)"""
    from deal.data.memory import InMemorySegmentation

    if split_ids("val") and not val_is_test():
        return InMemorySegmentation(*load_split("val")), "best validation mIoU"
    return None, ("last epoch (the test split doubles as validation)" if split_ids("val") else "last epoch (no validation split)")


def val_is_test() -> bool:
    """True when the validation and test splits share images (CamVid's test_split: val): a
    best-validation checkpoint would then be picked on the test set."""
    ids = read_json(prepared() / "ids.json")
    return bool(set(ids["val"]) & set(ids["test"]))


def load_model(params: dict, path: str | Path):
    """The network saved at `path` (deal.models.load_model: the difficulty branch and the
    loss prediction module as the file holds them); a file that does not fit stops."""
    from deal.models import load_model as from_state

    try:
        return from_state(load_state(path), model_config(params, with_difficulty=False))
    except ValueError as exc:
        fail(f"{path}: does not fit the network params.yaml describes ({str(exc)[:120]}); "
             f"rerun the stage that wrote it (dvc repro -f)")


def start_from_pretrained(model, folder: str | Path) -> str:
    """Load the pretrain stage's network (folder/model.pt) into `model` wherever a tensor's name and
    shape fit; returns the method, from folder/pretrain.json ("none": nothing loaded)."""
    from deal.pretrain import transfer

    record = read_json(Path(folder) / "pretrain.json")
    method = record.get("method") if isinstance(record, dict) else None
    if method is None:
        unreadable(Path(folder) / "pretrain.json", ValueError("no 'method'"))
    if method != "none":
        loaded = transfer(model, load_state(Path(folder) / "model.pt"))
        if not loaded:
            fail(f"{folder}/model.pt: no tensor fits this network (another model.width_mult or head_channels?); "
                 "rerun `dvc repro pretrain`")
    return method


# ---------------------------------------------------------------- configs


def model_config(params: dict, with_difficulty: bool, loss_module_hidden: int | None = None):
    from deal.models import ModelConfig

    m = params["model"]
    return ModelConfig(
        num_classes=dataset_info()["num_classes"],
        width_mult=m["width_mult"],
        head_channels=m["head_channels"],
        difficulty=with_difficulty,
        grid=tuple(params["deal"]["grid"]),
        detach=params["deal"]["mode"] == "decoupled",
        pretrained=m.get("pretrained"),
        loss_module_hidden=loss_module_hidden,
        pam_backward=params["deal"]["pam_backward"],
    )


def check_pam_backward(params: dict, num_classes: int) -> None:
    """deal.pam_backward symmetric stops here, before training, where its kernel cannot run."""
    from deal.models.pam_cpu import KernelUnavailable, check_backward
    from deal.runtime import resolve_device

    try:
        check_backward(params["deal"]["pam_backward"], resolve_device(params["train"]["device"]), num_classes)
    except KernelUnavailable as exc:
        fail(f"params.yaml: deal.pam_backward: symmetric, but {exc}; set it to auto (the kernel where it runs) or sdpa")


def pam_backward_record(params: dict, model) -> dict:
    """What train.json records of PAM's backward: the param and the backwards that ran."""
    ran = sorted(model.difficulty.attention.backward_ran) if getattr(model, "difficulty", None) is not None else []
    return {"param": params["deal"]["pam_backward"], "ran": ran}


def train_config(params: dict, mode: str, train_size: int, epochs: int | None = None, seed: int = 0, masks=None):
    """The TrainConfig of a stage; `train.iterations` (if set) fixes the SGD steps per round. A training
    gives its labelled `masks`: with train.class_weights median_frequency they weigh the classes."""
    from deal.training import TrainConfig

    t, d = params["train"], params["deal"]
    check_device(t["device"])
    if epochs is None:
        epochs = t["epochs"]
        if t.get("iterations"):
            per_epoch = max(1, train_size // t["batch_size"])
            epochs = max(1, -(-t["iterations"] // per_epoch))
    return TrainConfig(
        epochs=epochs,
        batch_size=t["batch_size"],
        lr=t["lr"],
        head_lr_mult=t["head_lr_mult"],
        momentum=t["momentum"],
        nesterov=t["nesterov"],
        weight_decay=t["weight_decay"],
        poly_power=t["poly_power"],
        val_every=t["val_every"],
        seed=seed,
        mode=mode,
        lambda_dif=d["lambda"],
        difficulty_loss=d["loss"],
        void_as_correct=d["void_as_correct"],
        precision=t["precision"],
        device=t["device"],
        num_workers=t["num_workers"],
        progress=True,
        sync_bn=t["sync_bn"],
        average=t["average"],
        average_start=t["average_start"],
        ema_decay=t["ema_decay"],
        class_weights=class_weights(params, masks),
    )


def class_weights(params: dict, masks) -> tuple[float, ...] | None:
    """train.class_weights of the labelled `masks` (None: unweighted, or no masks: not a training)."""
    if params["train"].get("class_weights", "none") == "none" or masks is None:
        return None
    import torch

    from deal.losses import median_frequency_weights

    info = dataset_info()
    return median_frequency_weights(torch.as_tensor(masks), info["num_classes"], info["void_index"])


def check_device(name: str) -> None:
    """train.device names a device this machine has (the validator knows only the spelling)."""
    import torch

    if name.startswith("cuda"):
        index = int(name.split(":")[1]) if ":" in name else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            fail(f"params.yaml: train.device: {name!r}, but this machine has {torch.cuda.device_count()} CUDA device(s); "
                 "use auto (CUDA when present) or cpu")


def set_threads(params: dict) -> None:
    """The torch stages' process set-up: train.threads, and freed memory kept for the next batch."""
    from deal.runtime import retain_freed_memory

    retain_freed_memory()
    threads = params["train"].get("threads") or 0
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def distribute(params: dict, script: str, split: bool = True) -> tuple[int, int]:
    """Several processes (train.nproc x train.nnodes > 1, deal.launch): replace this stage
    process with torchrun running `script` again (never returns), or, in a torchrun worker,
    join the process group. Returns (rank, world size): (0, 1) in one process, also when
    `split` is False (a stage whose work does not split runs in one process whatever the
    params). Ranks but 0 keep their stdout quiet: rank 0 reports and writes the outputs."""
    from deal import launch

    if not split or launch.world_size(params) == 1:
        return 0, 1
    if not launch.is_worker():
        import torch
        from deal.runtime import resolve_device

        check_device(params["train"]["device"])
        device = resolve_device(params["train"]["device"])
        nproc = params["train"]["nproc"]
        if device.type == "cuda" and torch.cuda.device_count() < nproc:
            fail(f"params.yaml: train.nproc: {nproc} processes, one GPU each, but this machine has "
                 f"{torch.cuda.device_count()}; lower train.nproc")
        if device.type == "cpu" and params["train"]["sync_bn"]:
            fail("params.yaml: train.sync_bn: true, but the stages run on the CPU, where SyncBatchNorm is not "
                 "available; set train.sync_bn: false (or run on CUDA)")
        launch.relaunch(params, script)
    from deal import distributed

    rank, world = distributed.init(params["train"]["device"])
    if rank != 0:
        import os

        sys.stdout = open(os.devnull, "w")
    return rank, world


__all__ = [
    "ParamsError",
    "schedule",
]
