"""check_params: params.yaml checked as the stages will check it, before DVC runs.

    python tools/check_params.py                          # params.yaml as it is
    python tools/check_params.py -S train.lr=0.02         # with `dvc exp run -S` overrides applied

DVC resolves dvc.yaml (stage names and output paths from the round ids and
seeds, steps that must chain) before any stage runs, so a bad param would
otherwise reach DVC's own error, or a path DVC deletes. `make repro` and
`python tools/host.py dvc repro|exp run ...` run this check first. It reads
params.yaml as DVC does (deal.config.parse_params), applies the -S values
where DVC applies them (FILE:KEY=VALUE: params.yaml by any name; any other
file is refused), holds the run to its limits (deal.limits: stages, memory,
disk) and names the locks DVC could not read (tools/repair.py). Prints one
line per problem and exits 1, or says the params are valid and exits 0; it
writes nothing.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deal.config import ParamsError, ParamsReadError, check_params, known_train_size, parse_params, parse_value  # noqa: E402

PARAMS = Path("params.yaml")
MAX_LINES = 10  # problems printed, at most (and a line saying how many more)


def set_param(params: dict, key: str, value, delete: bool = False) -> str | None:
    """Set (or delete) one dotted key as `dvc exp run -S` does; None, or the problem."""
    node = params
    names = re.sub(r"\[(\d+)\]", r".\1", key).split(".")  # rounds[1].id as rounds.1.id
    for name in names[:-1]:
        child = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, list) and name.isdigit() and int(name) < len(node):
            child = node[int(name)]
        if not isinstance(child, (dict, list)):
            if not isinstance(node, dict):
                return f"-S {key}: {name!r} is not a section of params.yaml"
            child = node[name] = {}
        node = child
    last = names[-1]
    if isinstance(node, list):
        if not (last.isdigit() and int(last) < len(node)):
            return f"-S {key}: {last!r} is not an index of that list"
        node[int(last)] = value
    elif delete:
        node.pop(last, None)
    else:
        node[last] = value
    return None


def experiments(assignments: list[str]) -> list[list[tuple[str, object, bool]]] | str:
    """The (key, value, delete) settings of each experiment that `-S` values make, parsed and
    swept (`lr=0.01,0.02`, `range(...)`) as DVC does, with Hydra's grammar; or the problem."""
    ours = []
    for assignment in assignments:
        # the file DVC applies it to, as dvc.utils.cli_parse.to_path_overrides splits it: FILE:KEY=VALUE
        # whenever a colon comes before the first `=`, whatever FILE is
        target, colon, rest = assignment.partition(":")
        if colon and ":" in assignment.partition("=")[0]:
            if not Path(target).resolve() == PARAMS.resolve():
                return (f"-S {assignment}: sets {target}, not {PARAMS}; every param of this pipeline is in "
                        f"{PARAMS}: -S KEY=VALUE (e.g. -S train.lr=0.02)")
            assignment = rest
        ours.append(assignment)
    try:
        from dvc.utils.hydra import get_hydra_sweeps, to_hydra_overrides
    except ImportError:  # DVC without Hydra: plain key=value, YAML values
        settings = []
        for assignment in ours:
            key, sep, value = assignment.partition("=")
            if not sep or not key:
                return f"-S {assignment}: not KEY=VALUE (e.g. -S train.lr=0.02)"
            settings.append((key, parse_value(value) if value else None, False))
        return [settings]
    for assignment in ours:
        try:
            to_hydra_overrides([assignment])
        except Exception as exc:  # what DVC would answer with "Invalid `--set-param` value"
            return f"-S {assignment}: not a value DVC can parse ({str(exc).splitlines()[0]}); quote it or fix it"
    runs = []
    for run in get_hydra_sweeps({str(PARAMS): ours}) if ours else [{str(PARAMS): []}]:
        runs.append([(o.key_or_group, o.value(), o.is_delete()) for o in to_hydra_overrides(run[str(PARAMS)])])
    return runs


def overrides(argv: list[str]) -> list[str]:
    """The -S/--set-param values of a `dvc exp run` command line."""
    found, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-S", "--set-param") and i + 1 < len(argv):
            found.append(argv[i + 1])
            i += 1
        elif arg.startswith("--set-param="):
            found.append(arg.split("=", 1)[1])
        elif arg.startswith("-S") and len(arg) > 2:
            found.append(arg[2:])
        i += 1
    return found


def problems(assignments: list[str], path: Path = PARAMS) -> list[str]:
    """Every problem of `path` with `assignments` applied (each swept experiment's); [] when valid."""
    try:
        base = parse_params(path.read_text())
    except OSError as exc:
        return [f"{path}: cannot read params ({exc.strerror}); run from the repository root, or restore it "
                f"(git checkout {path})"]
    except ParamsReadError as exc:
        return [f"{path}: {exc}"]
    runs = experiments(assignments)
    if isinstance(runs, str):
        return [runs]
    found: list[str] = []
    for settings in runs:
        params = copy.deepcopy(base)
        for key, value, delete in settings:
            problem = set_param(params, key, value, delete) if isinstance(params, dict) else None
            if problem:
                return [problem]
        try:
            # the prepared split's size is checked by prepare itself (it may be stale here)
            check_params(params, train_size=known_train_size(params) if isinstance(params, dict) else None, disk=True)
        except ParamsError as exc:
            found.extend(line for line in exc.lines if line not in found)
    if len(found) > MAX_LINES:  # a sweep of many experiments: the first problems say what to fix
        found = found[:MAX_LINES] + [f"{path}: {len(found) - MAX_LINES} more problems in the {len(runs)} experiments "
                                     "the -S values sweep; fix the ones above first"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                        help="a param as `dvc exp run -S` sets it (repeatable)")
    args = parser.parse_args()
    lines = problems(args.set_param)
    from repair import broken_locks

    lines += [f"{path}: {why} (DVC was killed while it wrote it); restore it: git checkout {path} "
              "(or delete it: its stages rerun), or run `make repro`, which restores it" for path, why in broken_locks()]
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    if not lines:
        print(f"{PARAMS}: valid")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
