"""Which stage this is: its stage file, its matrix item from $DVC_STAGE (or --stage, --seed, ...), its
arguments, and the params it declares."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from deal.config import ParamsError, check_params
from stages._shared import ROOT
from stages._shared.errors import fail
from stages._shared.params import read_params
from stages._shared.prepared import Prepared


# DVC sets it for every stage command it runs: the stage's address, `[dvc file:]name` (dvc/stage/run.py)
STAGE_ENV = "DVC_STAGE"


# what a per-(seed, method, round) stage is: the values of its matrix item (the stage files' matrix keys:
# seed, m, r ({id}), s ({cur, next}), f, kind)
IDENTITY = ("seed", "method", "round", "next", "format", "kind")


_ITEM_FIELDS = {"item.seed": "seed", "item.m": "method", "item.r.id": "round", "item.s.cur": "round",
                "item.s.next": "next", "item.f": "format", "item.kind": "kind"}


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
    templates filled in from it; args.prepared (--prepared) a Prepared."""
    _one_line_errors(parser)
    args = parser.parse_args()
    kinds = getattr(args, "_kinds", None)
    if kinds:
        resolve_identity(args, kinds)
    if getattr(args, "prepared", None) is not None:
        args.prepared = Prepared(args.prepared)
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
