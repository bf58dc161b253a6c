"""The pipeline's params: validation and the budget schedule.

Plain Python and yaml (no torch, no DVC): stages call `check_params` before they
read or write anything, and `make repro` (tools/host.py) before DVC runs, so
a bad params file stops with one line per problem naming the param and the fix.
Every param is checked for its type and range, and an unknown key is named
with the nearest valid one: a typo never falls back to a default silently.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Mapping

from deal import launch
from deal.limits import check as check_limits
from deal.methods import DEAL, METHODS, NAMES, split_lists
from deal.specs import MAX_SEED, boolean, choice, device, integer, is_int as _is_int, number, optional, pair

DATASET_KINDS = ("synthetic", "camvid", "cityscapes", "folder")
DEAL_MODES = ("joint", "decoupled")
DIFFICULTY_LOSSES = ("weighted_bce", "bce")
BIN_SPANS = ("image", "fixed")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# who labels each round's picks: the dataset's own masks, or a person (labels/masks/, stages/label.py)
ORACLES = ("simulated", "human")
# the annotation tools whose task files the export stage writes after each select
EXPORT_FORMATS = ("label_studio",)
# where the generate stage writes the embedded scenes (dvc.yaml); the synthetic default of dataset.path
SYNTHETIC_PATH = "data/synthetic"
# the embedded scenes' per-scene conditions (deal.data.synthetic.CONDITION_SETS, kept here without numpy)
SYNTHETIC_CONDITIONS = ("none", "long_tail")
# encoder weights live here, in the repository, so that DVC hashes them (`dvc add`): see check_weights
WEIGHTS_DIR = "weights"
# what the stages write: a data folder there would be a dependency of its own outputs
OUTPUT_FOLDERS = ("data", "runs", "metrics", "figures")
# names that reach a path (round ids): no shell or path syntax
SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+")
# keys DVC leaves out of its run-cache key at every level of a stage's entry, params included
# (dvc/stage/cache.py: Meta.PARAM_SIZE and PARAM_NFILES): a param so named would not tell one
# run from another, and DVC would restore the outputs of a run with another value. No param has one.
DVC_HIDDEN_KEYS = ("size", "nfiles")


# values in a params file once its YAML aliases are expanded: far above any real params.yaml
# (the default holds about 150), far below what an alias bomb expands to
MAX_PARAM_VALUES = 100_000


class ParamsReadError(ValueError):
    """A params file that DVC would not read, or too large to check; str() is one line without the file's name."""


def parse_params(text: str):
    """The content of a params file, read exactly as DVC reads it (see parse_value); an empty file is {}."""
    return parse_value(text) or {}


def parse_value(text: str):
    """YAML text read exactly as DVC reads a params file (dvc.utils.serialize.parse_yaml: ruamel.yaml's
    safe loader, YAML 1.2, so `010` is 10, `1:20` and `on` are text), so that the check,
    the stages, `dvc params diff` and the lock see the same values. A duplicate key (which DVC refuses with a
    traceback) and aliases that expand past MAX_PARAM_VALUES values raise ParamsReadError."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        data = YAML(typ="safe").load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        raise ParamsReadError(f"line {mark.line + 1}: {exc.problem}; keep one of them (DVC refuses a file with "
                              "a duplicate key)") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ParamsReadError(f"{where}{what or 'not YAML'}; fix the YAML") from None
    except YAMLError as exc:
        raise ParamsReadError(f"{(str(exc).strip().splitlines() or ['not YAML'])[0]}; fix the YAML") from None
    count = expanded_size(data)
    if count > MAX_PARAM_VALUES:
        raise ParamsReadError(f"holds {'a value that contains itself' if count == math.inf else f'{count:,} values'} "
                              f"once its YAML aliases (*name) are expanded, more than {MAX_PARAM_VALUES:,}; write the "
                              "values out instead of aliasing them")
    return data


def expanded_size(data, limit: int = MAX_PARAM_VALUES) -> float:
    """How many values `data` holds with every shared (aliased) node counted each time it occurs:
    in time linear in the distinct nodes; inf for a node that contains itself. Stops counting past `limit`."""
    sizes: dict[int, float] = {}

    def size(node) -> float:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = math.inf  # while it is counted: met again inside itself, it contains itself
        total = 1
        for child in (node.values() if isinstance(node, dict) else node):
            total += size(child)
            if total > limit:
                break
        sizes[key] = total
        return total

    try:
        return size(data)
    except RecursionError:
        return math.inf


class ParamsError(Exception):
    """Bad params; `lines` holds one line per problem."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


SECTIONS = {
    "dataset": {
        "kind": None,  # checked below, with its own message
        "path": None,
        # not `size`: DVC's run-cache key drops every key named size or nfiles (DVC_HIDDEN_KEYS)
        "resize": pair(integer(32)),
        "test_split": choice("test", "val"),
        "val_holdout": integer(0),
        "seed": integer(0, MAX_SEED, why=" (the embedded scenes and the Cityscapes hold-out; not an active-learning seed)"),
        "synthetic": {
            "height": integer(32), "width": integer(32), "train": integer(1), "val": integer(0), "test": integer(1),
            "conditions": choice(*SYNTHETIC_CONDITIONS),
        },
    },
    "budget": {"initial": None, "batch": None},  # budget_count
    "model": {
        "width_mult": number(0, low_open=True),
        "head_channels": integer(1),
        "pretrained": None,  # check_weights
    },
    "train": {
        "epochs": integer(1, why=" (passes over the labeled pool a round)"),
        "iterations": optional(integer(1)),
        "batch_size": integer(1),
        "lr": number(0, low_open=True),
        "head_lr_mult": number(0, low_open=True),
        "momentum": number(0, 1, high_open=True),
        "nesterov": boolean(),
        "weight_decay": number(0),
        "poly_power": number(0),
        "val_every": integer(1),
        "crop": pair(integer(8)),
        "scale": pair(number(0, low_open=True), ordered=True),
        "flip": boolean(),
        "average": choice("none", "swa", "ema"),
        "average_start": number(0, 1, high_open=True, why=" (the fraction of a run's steps before weight averaging starts)"),
        "ema_decay": number(0, 1, low_open=True, high_open=True),
        "class_weights": choice("none", "median_frequency"),
        "precision": choice(*PRECISIONS),
        "device": device(),
        "num_workers": integer(0, 256),
        "threads": integer(0, 1024, why=" (0: torch's default)"),
        # several processes (deal.launch): they change the numbers, so the stages track them
        "nproc": integer(1, 1024, why=" (processes per machine; more than 1 runs the stage under torchrun)"),
        "nnodes": integer(1, 1024, why=" (machines; more than 1 needs launch.rdzv_endpoint)"),
        "sync_bn": boolean(),
    },
    # where several machines' processes meet (train.nnodes > 1): not what they compute, so no stage tracks it
    "launch": {
        "rdzv_endpoint": (lambda v: v is None or (isinstance(v, str) and launch.ENDPOINT.fullmatch(v) is not None),
                          "null, or host:port of one of the machines (torchrun's --rdzv-endpoint)"),
        "rdzv_id": (lambda v: isinstance(v, str) and launch.RDZV_ID.fullmatch(v) is not None,
                    "a name of letters, digits, _ and - shared by the machines of one run (torchrun's --rdzv-id)"),
    },
    "reference": {"train": boolean(), "seed": integer(0, MAX_SEED)},
    "pretrain": {
        "method": choice("none", "colorization", "scenes"),
        "steps": integer(1, why=" (SGD steps of the pretraining)"),
        "batch_size": integer(2),
        "lr": number(0, low_open=True),
        "bin_size": number(2, 64, why=" (colorization: the width of an ab colour bin in Lab units)"),
        "scenes": integer(1, why=" (scenes: how many street scenes to generate)"),
        "conditions": choice(*SYNTHETIC_CONDITIONS),
        "seed": integer(0, MAX_SEED),
    },
    "deal": {
        "mode": None,  # checked below, with its own message
        "grid": None,
        "loss": None,
        "lambda": number(0),
        "void_as_correct": boolean(),
        "iterations": integer(1),
        "pam_backward": choice("auto", "symmetric", "sdpa"),
    },
}
TOP_LEVEL = ("seeds", "baseline_ref", "dataset", "oracle", "export", "budget", "methods", "baselines", "deal_methods",
             "method_cfg", "method_train", "rounds", "steps", "model", "pretrain", "train", "reference", "deal", "launch")
# optional sections: absent, their defaults hold (study recipes and older params files lack them)
OPTIONAL = ("limits",)


def shown(value, items: int = 8) -> str:
    """A value as params.yaml spells it: null, true, 'text', [1, 2]; a long list or text cut short."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, list):
        more = f", ... ({len(value)} values)" if len(value) > items else ""
        return "[" + ", ".join(shown(v) for v in value[:items]) + more + "]"
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"... ({len(text)} characters)"


def nearest(name, known) -> str:
    """`; did you mean X?` for the closest of `known`, or the list of them."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(map(str, known))}"


def check_keys(node: Mapping, known, name: str, problems: list[str]) -> None:
    """Unknown keys of `node` (at `name`), each with the nearest known one."""
    for key in node:
        if key not in known:
            problems.append(f"params.yaml: {name}{key}: unknown key; {nearest(key, known)}")


def check_section(node, schema: Mapping, name: str, problems: list[str]) -> bool:
    """Walk `node` against `schema`; True when it is a mapping (its keys may still have problems)."""
    if not isinstance(node, Mapping):
        problems.append(f"params.yaml: {name}: {shown(node)}; a mapping of {', '.join(schema)}; "
                        "copy it from the repository's params.yaml")
        return False
    check_keys(node, schema, f"{name}.", problems)
    for key, spec in schema.items():
        full = f"{name}.{key}"
        if key not in node:
            problems.append(f"params.yaml: {full}: missing; add it (the repository's params.yaml has every key)")
        elif isinstance(spec, Mapping):
            check_section(node[key], spec, full, problems)
        elif spec is not None:
            test, what = spec
            if not test(node[key]):
                problems.append(f"params.yaml: {full}: {shown(node[key])}; {what}")
    return True


# ---------------------------------------------------------------- budget


def budget_count(value, train_size: int | None, name: str, problems: list[str]) -> int:
    """An image count from an int or a percent string like "10%" of the train split.

    With `train_size` None (the split not known yet) only the value's form and
    range are checked, and 0 is returned for a percent.
    """
    generic = f"params.yaml: {name}: {value!r} is not a positive image count or percent; write e.g. 40 or \"10%\""
    if _is_int(value):
        count = value
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = float(value.strip()[:-1])
        except ValueError:
            percent = math.nan
        if not (math.isfinite(percent) and percent > 0):
            problems.append(generic)
            return 0
        if percent > 100:
            problems.append(f"params.yaml: {name}: {value!r} is more than the whole train split; "
                            "a percent of the train split is in (0, 100]")
            return 0
        if train_size is None:
            return 0
        count = round(percent * train_size / 100)
        if count < 1:
            problems.append(f"params.yaml: {name}: {value!r} of the {train_size} train images is 0 images; raise it")
            return 0
    else:
        problems.append(generic)
        return 0
    if count < 1:
        problems.append(generic)
        return 0
    if train_size is not None and count > train_size:
        problems.append(f"params.yaml: {name}: {value!r} is more than the {train_size} images of the train split; lower it")
        return 0
    return count


def epochs_for_steps(steps: int, train_size: int, batch_size: int) -> int:
    """The epochs that make at least `steps` SGD steps of `batch_size` over `train_size` images (an epoch
    of whole batches, and at least one): train.iterations and deal.iterations in epochs."""
    per_epoch = max(1, train_size // batch_size)
    return max(1, -(-steps // per_epoch))


def schedule(params: Mapping, train_size: int) -> list[int]:
    """Labeled images at each round: initial, initial + batch, ..."""
    problems: list[str] = []
    initial = budget_count(params["budget"]["initial"], train_size, "budget.initial", problems)
    batch = budget_count(params["budget"]["batch"], train_size, "budget.batch", problems)
    if problems:
        raise ParamsError(problems)
    return [initial + i * batch for i in range(len(params["rounds"]))]


# the shared round-0 models of a seed (train_initial@<seed>-<kind>); learning loss trains its own
INITIAL_MODELS = ("segmentation", "joint")


def initial_model(params: Mapping, method: str) -> str | None:
    """The shared round-0 model `method` starts from, as published: a DEAL method
    the joint network (L_seg + L_dif) when deal.mode is joint, any other method
    (and DEAL in decoupled mode) a plain segmentation network; None for a
    method that trains its own round 0 (learning loss)."""
    if not METHODS[method].shares_round0:
        return None
    return training_mode(params, method)


def training_mode(params: Mapping, method: str | None) -> str:
    """How a method's network trains each round (deal.training.TrainConfig.mode): joint for a
    DEAL method when deal.mode is joint, else segmentation (learning loss adds its term to it)."""
    return "joint" if method in DEAL and params["deal"]["mode"] == "joint" else "segmentation"


def round_batch(params: Mapping, round_id: str, train_size: int) -> int:
    """The images the step after round `round_id` adds (0 after the last round)."""
    ids = [r["id"] for r in params["rounds"]]
    counts = schedule(params, train_size)
    i = ids.index(round_id)
    return counts[i + 1] - counts[i] if i + 1 < len(counts) else 0


def round_seed(seed: int, round_index: int) -> int:
    """The draws of one seed's round (the sub-sample, MC dropout, VAAL): distinct per (seed, round)."""
    return seed * 1000 + round_index


def initial_models_trained(params: Mapping) -> list[str]:
    """The shared round-0 models each seed trains: the plain one always, the joint one when
    deal.mode is joint. Whatever `methods` lists, so that adding a method never retrains them."""
    return list(INITIAL_MODELS) if params["deal"]["mode"] == "joint" else ["segmentation"]


def known_train_size(params: Mapping) -> int | None:
    """The train split's size where params alone say it: the embedded generator's count."""
    data = params.get("dataset")
    if isinstance(data, Mapping) and data.get("kind") == "synthetic" and isinstance(data.get("synthetic"), Mapping):
        train = data["synthetic"].get("train")
        return train if _is_int(train) and train > 0 else None
    return None


# ---------------------------------------------------------------- check_params


def check_params(params, train_size: int | None = None, root: str = ".", counts: Mapping | None = None,
                 num_classes: int | None = None, disk: bool = False) -> None:
    """Raise ParamsError listing every problem found in `params`.

    `train_size` (the train split's size, known after `prepare`; for the
    embedded generator, from its params) enables the budget checks; `root`
    resolves relative data and weights paths. Valid params are then held to
    their limits (deal.limits): `counts` (images per split) and `num_classes`
    where the prepared data says them, and with `disk` the disk the run
    writes to (a check before the run, not in its stages).
    """
    if not isinstance(params, Mapping):
        raise ParamsError([f"params.yaml: {params!r} is not a mapping of sections; restore it (git checkout params.yaml)"])
    problems: list[str] = []
    missing = [k for k in TOP_LEVEL if k not in params]
    if missing:
        raise ParamsError([f"params.yaml: missing section {k!r}; copy it from the repository's params.yaml" for k in missing])
    check_keys(params, TOP_LEVEL + OPTIONAL, "", problems)
    check_seeds(params["seeds"], problems)
    ok = {name: check_section(params[name], schema, name, problems) for name, schema in SECTIONS.items()}

    if ok["dataset"]:
        check_dataset(params["dataset"], root, problems)
    if ok["budget"]:
        for key in ("initial", "batch"):
            if key in params["budget"]:
                budget_count(params["budget"][key], None, f"budget.{key}", problems)
    if ok["train"] and params["train"].get("nesterov") is True and params["train"].get("momentum") == 0:
        problems.append("params.yaml: train.nesterov: true needs momentum > 0 (train.momentum is 0); "
                        "set train.nesterov: false or a momentum")
    if ok["train"]:
        launch.check(params, problems)
    if ok["model"]:
        check_weights(params["model"], root, problems)
    if ok["deal"]:
        deal = params["deal"]
        if deal.get("mode") not in DEAL_MODES:
            problems.append(f"params.yaml: deal.mode: {deal.get('mode')!r}; use joint (published) or decoupled")
        if deal.get("loss") not in DIFFICULTY_LOSSES:
            problems.append(f"params.yaml: deal.loss: {deal.get('loss')!r}; use weighted_bce (published) or bce")
        grid = deal.get("grid")
        if not (isinstance(grid, list) and len(grid) == 2 and all(_is_int(g) and g > 0 for g in grid)):
            problems.append(f"params.yaml: deal.grid: {grid!r}; give the attention grid as [h, w]")
        elif ok["dataset"] and SECTIONS["dataset"]["resize"][0](params["dataset"].get("resize")):
            resize = params["dataset"]["resize"]
            if grid[0] > resize[0] or grid[1] > resize[1]:
                problems.append(f"params.yaml: deal.grid: {shown(grid)} is finer than the images (dataset.resize "
                                f"{shown(resize)}); the attention grid is at most the image size (published: about "
                                "1/4 to 1/8 of it)")
    check_oracle(params, ok, problems)
    methods = check_methods(params, problems)
    ref = params["baseline_ref"]
    if ref is not None and ref not in methods:
        problems.append(f"params.yaml: baseline_ref: {shown(ref)}; the method every other one is compared with, "
                        f"paired by seed: one of methods ({', '.join(map(str, methods))}), or null for no comparison")
    ids = check_rounds(params, problems)

    if train_size is None:
        train_size = known_train_size(params)
    if train_size is not None and not problems:
        check_budget(params, methods, ids, train_size, problems)
    if not problems:  # how large the run is, once every value it is computed from is valid
        check_limits(params, problems, counts=counts, num_classes=num_classes, disk_root=root if disk else None)
    if problems:
        raise ParamsError(problems)


def check_seeds(seeds, problems: list[str]) -> None:
    """seeds: a non-empty list of distinct ints >= 0; each names stages and folders (seed<N>)."""
    if not (isinstance(seeds, list) and seeds and all(_is_int(s) and 0 <= s <= MAX_SEED for s in seeds)):
        problems.append(f"params.yaml: seeds: {shown(seeds)}; a list of ints in [0, {MAX_SEED}], e.g. [0] or "
                        "[0, 1, 2, 3, 4] (each seed draws its own initial pool and trains its own round-0 models)")
    elif len(set(seeds)) != len(seeds):
        problems.append(f"params.yaml: seeds: {shown(seeds)} lists a seed twice; list each once")


def check_oracle(params: Mapping, ok: Mapping, problems: list[str]) -> None:
    """oracle and export: who answers each round's picks, and the task files written for a person."""
    oracle, export = params["oracle"], params["export"]
    if oracle not in ORACLES:
        problems.append(f"params.yaml: oracle: {shown(oracle)}; simulated (the dataset's masks answer) or human "
                        "(a person writes the picks' masks into labels/masks/)")
    if not (isinstance(export, list) and all(isinstance(f, str) for f in export)):
        problems.append(f"params.yaml: export: {shown(export)}; a list of task formats, [] or [{', '.join(EXPORT_FORMATS)}]")
        export = None
    else:
        for f in export:
            if f not in EXPORT_FORMATS:
                problems.append(f"params.yaml: export: unknown format {f!r}; one of {', '.join(EXPORT_FORMATS)}")
        if len(set(export)) != len(export):
            problems.append("params.yaml: export: a format is listed twice; list each once")
    if oracle != "human":
        return
    if ok["dataset"] and params["dataset"].get("kind") != "folder":
        problems.append(f"params.yaml: oracle: human needs your own images (dataset.kind: folder, whose pool images may "
                        f"lack masks), not {params['dataset'].get('kind')!r}; set dataset.kind: folder, or oracle: simulated")
    if export == []:
        problems.append("params.yaml: export: [] with oracle: human; the person needs the picks: export: [label_studio]")
    if ok["reference"] and params["reference"].get("train") is True:
        problems.append("params.yaml: reference.train: true trains on every train image, but with oracle: human the "
                        "pool has no masks; set reference.train: false")


def check_dataset(data: Mapping, root: str, problems: list[str]) -> None:
    kind, path = data.get("kind"), data.get("path")
    if kind not in DATASET_KINDS:
        problems.append(f"params.yaml: dataset.kind: unknown dataset {kind!r}; use one of {', '.join(DATASET_KINDS)}")
    elif kind == "synthetic":
        if not (isinstance(path, str) and os.path.normpath(path) == os.path.normpath(SYNTHETIC_PATH)):
            problems.append(f"params.yaml: dataset.path: {shown(path)}; the embedded scenes are generated into "
                            f"{SYNTHETIC_PATH} (the generate stage): set dataset.path: {SYNTHETIC_PATH}")
    elif not path:
        problems.append(f"params.yaml: dataset.path: {kind} needs the data's folder; set dataset.path (e.g. -S dataset.path=/data/{kind})")
    elif not isinstance(path, str):
        problems.append(f"params.yaml: dataset.path: {path!r}; a folder path")
    elif os.path.normpath(path) == os.path.normpath(SYNTHETIC_PATH):
        problems.append(f"params.yaml: dataset.path: {path!r} is where the embedded scenes are generated; "
                        f"point it at the {kind} root (e.g. make preset PRESET={kind} DATA=/data/{kind})")
    elif overlaps_outputs(path, root):
        problems.append(f"params.yaml: dataset.path: {path!r} overlaps the pipeline's own outputs "
                        f"({', '.join(OUTPUT_FOLDERS)}, or the repository holding them); point it at the {kind} "
                        "root outside them")
    elif not os.path.isdir(os.path.join(root, path)):
        problems.append(f"params.yaml: dataset.path: {path!r} is not a folder; point it at the {kind} root")


def overlaps_outputs(path: str, root: str) -> bool:
    """`path` (relative to `root`, absolute, or through symlinks) is one of the output folders, lies inside
    one, or holds one (the repository itself, or a folder above it): DVC would refuse the dependency
    (an output inside it), or see the pipeline's own writes as an edit of the data."""
    real = os.path.realpath(os.path.join(root, path))
    repo = os.path.realpath(root)
    for out in OUTPUT_FOLDERS:
        folder = os.path.join(repo, out)
        if real == folder or real.startswith(folder + os.sep) or folder.startswith(real.rstrip(os.sep) + os.sep):
            return True
    return False


def check_weights(model: Mapping, root: str, problems: list[str]) -> None:
    """model.pretrained: null, or a state dict inside weights/, where the train stages' folder dep sees it."""
    path = model.get("pretrained")
    if path is None:
        return
    if not (isinstance(path, str) and path.strip()):
        problems.append(f"params.yaml: model.pretrained: {path!r}; null, or the path of a local torchvision "
                        f"mobilenet_v2 state dict in {WEIGHTS_DIR}/")
        return
    inside = os.path.normpath(path).split(os.sep)
    if os.path.isabs(path) or len(inside) < 2 or inside[0] != WEIGHTS_DIR:
        problems.append(f"params.yaml: model.pretrained: {path!r} is outside {WEIGHTS_DIR}/, so DVC would not see it change; "
                        f"copy it into {WEIGHTS_DIR}/ (then `dvc add {WEIGHTS_DIR}/{os.path.basename(path)}`) and "
                        f"set model.pretrained: {WEIGHTS_DIR}/{os.path.basename(path)}")
    elif not os.path.isfile(os.path.join(root, path)):
        problems.append(f"params.yaml: model.pretrained: {path!r} is not a file; put the state dict there "
                        "(`dvc pull` if a teammate added it) or set model.pretrained: null")
    elif model.get("width_mult") != 1.0:
        problems.append(f"params.yaml: model.width_mult: {model.get('width_mult')!r}; ImageNet weights "
                        "(model.pretrained) need width_mult 1.0")


def check_methods(params: Mapping, problems: list[str]) -> list[str]:
    """methods, baselines, deal_methods, method_cfg and method_train against the method
    table (deal.methods); returns the known methods listed."""
    lists = {}
    for key in ("methods", "baselines", "deal_methods"):
        value = params[key]
        if value is None:
            value = []
        if not (isinstance(value, list) and all(isinstance(m, str) for m in value)):
            problems.append(f"params.yaml: {key}: {shown(value)}; a list of method names, e.g. [random, entropy, deal_ds, deal_de]")
            value = []
        lists[key] = value
    methods = lists["methods"]
    if not methods and isinstance(params["methods"], (list, type(None))):
        problems.append("params.yaml: methods: empty; list at least one method, e.g. [random, deal_de]")
    for m in methods:
        if m not in METHODS:
            problems.append(f"params.yaml: methods: unknown method {m!r}; use any of {', '.join(NAMES)}")
    if len(set(methods)) != len(methods):
        problems.append("params.yaml: methods: a method is listed twice; list each once")
    derived = split_lists(methods)
    if lists["deal_methods"] != derived["deal_methods"]:
        problems.append(f"params.yaml: deal_methods: must list the DEAL methods of `methods` in order: {derived['deal_methods']} "
                        "(`make methods` writes it)")
    if lists["baselines"] != derived["baselines"]:
        problems.append(f"params.yaml: baselines: must list the other methods of `methods` in order: {derived['baselines']} "
                        "(`make methods` writes it)")

    cfgs, trains = params["method_cfg"], params["method_train"]
    for key, node in (("method_cfg", cfgs), ("method_train", trains)):
        if not isinstance(node, Mapping):
            problems.append(f"params.yaml: {key}: {shown(node)}; a mapping of method name to its options; "
                            "copy it from the repository's params.yaml")
        else:
            check_keys(node, NAMES, f"{key}.", problems)
    for m in NAMES:
        listed = m in methods
        if isinstance(cfgs, Mapping) and (listed or m in cfgs):
            cfg = cfgs.get(m)
            if isinstance(cfg, Mapping):
                check_options(cfg, METHODS[m].options, METHODS[m].required, f"method_cfg.{m}", problems)
            else:
                problems.append(f"params.yaml: method_cfg.{m}: missing; add its options (at least rho)")
        if not (isinstance(trains, Mapping) and (listed or m in trains)):
            continue
        options, schema = trains.get(m), METHODS[m].train_options
        if not isinstance(options, Mapping):
            problems.append(f"params.yaml: method_train.{m}: missing; add `{m}: {{}}` (the shared recipe) or its options")
        elif schema:
            check_options(options, schema, tuple(schema), f"method_train.{m}", problems)
        else:
            for key in options:
                problems.append(f"params.yaml: method_train.{m}.{key}: unknown key; {m} trains with the shared recipe "
                                f"and takes no options (set them in train:, or write `{m}: {{}}`)")
    return [m for m in methods if m in METHODS]


def check_options(node: Mapping, schema: Mapping, required, name: str, problems: list[str]) -> None:
    """A method's options (method_cfg.<m> or method_train.<m>): known keys, the required ones present, valid values."""
    check_keys(node, schema, f"{name}.", problems)
    for key, (test, what) in schema.items():
        if key in node:
            if not test(node[key]):
                problems.append(f"params.yaml: {name}.{key}: {node[key]!r}; {what}")
        elif key in required:
            problems.append(f"params.yaml: {name}.{key}: missing; {what}")


def check_rounds(params: Mapping, problems: list[str]) -> list[str]:
    """rounds and steps; returns the round ids (empty when they are unusable)."""
    rounds, steps = params["rounds"], params["steps"]
    if not (isinstance(rounds, list) and rounds and all(isinstance(r, Mapping) and "id" in r for r in rounds)):
        problems.append("params.yaml: rounds: a list of {id: r0}, {id: r1}, ...; every entry needs an id")
        return []
    ids = [r["id"] for r in rounds]
    bad = False
    for i, r in enumerate(rounds):
        check_keys(r, ("id",), f"rounds[{i}].", problems)
        if not (isinstance(r["id"], str) and SAFE_NAME.fullmatch(r["id"])):
            problems.append(f"params.yaml: rounds[{i}].id: {r['id']!r}; a round id is letters, digits, _ and - only "
                            "(it names stages and folders), e.g. r1")
            bad = True
    if bad:
        return []
    if not isinstance(steps, list) or not all(isinstance(s, Mapping) for s in steps):
        problems.append(f"params.yaml: steps: {shown(steps)}; a list of {{cur: r0, next: r1}}, ... (one between each two rounds)")
        return []
    for i, step in enumerate(steps):
        check_keys(step, ("cur", "next"), f"steps[{i}].", problems)
    if ids[0] != "r0":
        problems.append(f"params.yaml: rounds[0].id: {ids[0]!r}; the first round is r0 (the shared initial model)")
    elif len(set(ids)) != len(ids):
        problems.append("params.yaml: rounds: round ids repeat; give each round a new id")
    elif len(steps) != len(rounds) - 1:
        problems.append(f"params.yaml: steps: {len(steps)} steps for {len(rounds)} rounds; there is one step between each two rounds (append {{cur, next}} with the rounds)")
    else:
        for i, step in enumerate(steps):
            want = {"cur": ids[i], "next": ids[i + 1]}
            if {k: step.get(k) for k in want} != want:
                problems.append(f"params.yaml: steps[{i}]: {dict(step)!r} does not chain the rounds; it must be {want}")
    return ids


def check_budget(params: Mapping, methods: list[str], ids: list[str], train_size: int, problems: list[str]) -> None:
    """The schedule against the train split: enough images, and each batch within what a method scores."""
    found: list[str] = []
    initial = budget_count(params["budget"]["initial"], train_size, "budget.initial", found)
    batch = budget_count(params["budget"]["batch"], train_size, "budget.batch", found)
    if found:
        problems.extend(found)
        return
    counts = [initial + i * batch for i in range(len(ids))]
    if counts and counts[-1] > train_size:
        problems.append(
            f"params.yaml: budget: {len(ids)} rounds need {counts[-1]} labeled images but the train split has "
            f"{train_size}; lower budget.batch or drop rounds"
        )
        return
    from deal.data.pools import subsample_size

    step = counts[1] - counts[0] if len(counts) > 1 else 0
    for m in methods:
        rho = params["method_cfg"][m]["rho"]
        for i, labeled in enumerate(counts[:-1]):
            scored = subsample_size(train_size - labeled, rho)
            if step > scored:
                problems.append(
                    f"params.yaml: budget.batch: {step} is larger than the {scored} images method {m} scores "
                    f"after {ids[i]} (rho {rho} of {train_size - labeled} unlabeled); lower the batch or raise method_cfg.{m}.rho"
                )
                break
