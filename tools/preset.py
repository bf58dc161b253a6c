"""Write params.yaml from a preset: the repository defaults with the preset's values over them.

    python tools/preset.py presets/camvid.yaml --data /data/CamVid   # then: make repro
    python tools/preset.py presets/camvid-cpu.yaml --data ../shared/data/CamVid --set dataset.test_split=val

A preset holds only what differs from params.yaml (nested keys; `methods`
alone: `baselines` and `deal_methods` are written from it); `--data`
sets dataset.path; `--set KEY=VALUE` (repeatable, dotted key, YAML value)
sets one more param over the preset. The result is validated before it is written,
the values written in place, so params.yaml keeps its comments; its old content is
kept as params.yaml.bak; `git checkout
params.yaml` restores the defaults.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deal.atomic import WriteError, write_text  # noqa: E402
from deal.config import ParamsError, ParamsReadError, check_params, parse_params, parse_value  # noqa: E402
from deal.methods import split_lists  # noqa: E402


HEADER = "# written by tools/preset.py"


def round_trip():
    """ruamel.yaml (a dependency of DVC) set to write params.yaml back as it is: its comments, its
    flow lists, its indents and nulls (a load and dump of the committed file is byte-identical)."""
    from ruamel.yaml import YAML

    rt = YAML()
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return rt


def styled(value, like):
    """`value` as ruamel nodes in the style of the value it replaces (`like`): a list or map
    written inline stays inline; a new list is inline, as params.yaml writes its lists."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        node = CommentedMap((k, styled(v, like.get(k) if isinstance(like, dict) else None)) for k, v in value.items())
        if isinstance(like, CommentedMap) and like.fa.flow_style():
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        item = like[0] if isinstance(like, list) and like else None
        items = [styled(v, item) for v in value]
        if isinstance(like, CommentedSeq):  # refilled in place: its style and the comments around it stay
            del like[:]
            like.extend(items)
            return like
        node = CommentedSeq(items)
        node.fa.set_flow_style()
        return node
    return value


def overlay(doc, over: dict) -> None:
    """Write `over`'s values into the round-trip document `doc`, key by key (comments stay)."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            overlay(doc[key], value)
        else:
            doc[key] = styled(value, doc.get(key))


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
    try:  # read as DVC reads params (YAML 1.2): what is checked is what the stages and DVC will see
        preset = parse_params(args.preset.read_text())
        params = merge(parse_params(args.base.read_text()), preset)
    except ParamsReadError as exc:
        print(f"error: {args.preset} or {args.base}: {exc}", file=sys.stderr)
        return 1
    changes = dict(preset)  # what is written into params.yaml, in place
    if args.data:
        params["dataset"]["path"] = str(Path(args.data).resolve())
        changes = merge(changes, {"dataset": {"path": params["dataset"]["path"]}})
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
        try:
            node[names[-1]] = parse_value(value)
        except ParamsReadError as exc:
            print(f"error: --set {assignment}: {exc}", file=sys.stderr)
            return 1
        change = node[names[-1]]
        for name in reversed(names):
            change = {name: change}
        changes = merge(changes, change)
    if isinstance(params.get("methods"), list):  # the DEAL / other split, from the method table
        params.update(split_lists(params["methods"]))
        changes.update(split_lists(params["methods"]))
    try:
        check_params(params)
    except ParamsError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        return 1
    header = f"{HEADER} from {args.preset} over the defaults\n"
    if args.out.exists():
        write_text(args.out.with_name(args.out.name + ".bak"), args.out.read_text())
    import io

    rt = round_trip()
    doc = rt.load(args.base.read_text())
    overlay(doc, changes)
    text = io.StringIO()
    rt.dump(doc, text)
    if parse_params(text.getvalue()) != params:  # the document is what was validated
        raise AssertionError("preset: the round-trip document differs from the validated params")
    write_text(args.out, header + text.getvalue())
    print(f"preset: {args.preset} -> {args.out}" + (f" (data {params['dataset']['path']})" if args.data else ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except WriteError as exc:  # a full disk, a quota: one line, params as they were
        sys.exit(f"error: {exc}")
