"""Write params.yaml from a preset: the repository defaults with the preset's values over them.

    python stages/preset.py presets/camvid.yaml --data /data/CamVid   # then: make repro
    python stages/preset.py presets/camvid-cpu.yaml --data ../shared/data/CamVid --set dataset.test_split=val

A preset holds only what differs from params.yaml (nested keys; `methods`
alone: `baselines` and `deal_methods` are written from it); `--data`
sets dataset.path; `--set KEY=VALUE` (repeatable, dotted key, YAML value)
sets one more param over the preset. The result is validated before it is written, and
params.yaml's old content is kept as params.yaml.bak; `git checkout
params.yaml` restores the defaults.
"""

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deal.atomic import write_text  # noqa: E402
from deal.config import ParamsError, check_params  # noqa: E402
from deal.methods import split_lists  # noqa: E402


HEADER = "# written by stages/preset.py"


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", type=Path)
    parser.add_argument("--data", help="the dataset's root folder (dataset.path)")
    parser.add_argument("--base", type=Path, default=Path("params.yaml"), help="the defaults to start from")
    parser.add_argument("--out", type=Path, default=Path("params.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="one param over the preset, e.g. dataset.test_split=val (repeatable)")
    args = parser.parse_args()
    for path in (args.preset, args.base):
        if not path.is_file():
            print(f"error: {path}: no such file; run from the repository root", file=sys.stderr)
            return 1
    if args.base.read_text().startswith(HEADER):
        print(f"error: {args.base}: already written from a preset; restore the defaults first (git checkout {args.base})",
              file=sys.stderr)
        return 1
    params = merge(yaml.safe_load(args.base.read_text()), yaml.safe_load(args.preset.read_text()) or {})
    if args.data:
        params["dataset"]["path"] = str(Path(args.data).resolve())
    for assignment in args.set:
        key, sep, value = assignment.partition("=")
        node = params
        names = key.split(".")
        for name in names[:-1]:
            node = node.get(name) if isinstance(node, dict) else None
        if not sep or not key or not isinstance(node, dict) or names[-1] not in node:
            print(f"error: --set {assignment}: not KEY=VALUE with a KEY that params.yaml has (e.g. dataset.test_split=val)",
                  file=sys.stderr)
            return 1
        node[names[-1]] = yaml.safe_load(value)
    if isinstance(params.get("methods"), list):  # the DEAL / other split, from the method table
        params.update(split_lists(params["methods"]))
    try:
        check_params(params)
    except ParamsError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        return 1
    header = f"{HEADER} from {args.preset} over the defaults\n"
    if args.out.exists():
        write_text(args.out.with_name(args.out.name + ".bak"), args.out.read_text())
    write_text(args.out, header + yaml.safe_dump(params, sort_keys=False, default_flow_style=None))
    print(f"preset: {args.preset} -> {args.out}" + (f" (data {params['dataset']['path']})" if args.data else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
