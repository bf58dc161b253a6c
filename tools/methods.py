"""The method table, and params.yaml's method lists written from it.

    python tools/methods.py            # write baselines and deal_methods from methods (make methods)
    python tools/methods.py --check    # exit 1, naming the fix, when they disagree
    python tools/methods.py --list     # the table: each method, what it scores from, how it trains

A method is defined once, in deal/methods.py. params.yaml lists the methods
to run in `methods`; DVC's `matrix:` also needs them split into `baselines`
and `deal_methods` (the stages only DEAL methods have). Those two lines are
rewritten in place, comments and all, so adding a method is one edit of
`methods` and `make methods`.
"""

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deal.atomic import WriteError, write_text  # noqa: E402
from deal.config import parse_params  # noqa: E402
from deal.methods import METHODS, SCORES_FROM, TRAININGS, split_lists  # noqa: E402


def flow(names) -> str:
    return "[" + ", ".join(names) + "]"


def rewritten(text: str, lists: dict) -> str:
    """`text` with its top-level `baselines:` and `deal_methods:` values replaced, trailing comments kept."""
    for key, names in lists.items():
        pattern = re.compile(rf"^{key}:[^#\n]*?(\s*#.*)?$", re.M)
        if not pattern.search(text):
            raise KeyError(key)
        text = pattern.sub(lambda m: f"{key}: {flow(names)}{m.group(1) or ''}", text, count=1)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when the lists disagree")
    parser.add_argument("--list", action="store_true", help="print the method table and change nothing")
    args = parser.parse_args()
    if args.list:
        for m in METHODS.values():
            print(f"{m.name:17} {m.label:17} scores from {m.scores_from}: {SCORES_FROM[m.scores_from]}")
            print(f"{'':17} trains: {TRAININGS[m.training]}" + ("" if m.shares_round0 else "; trains its own round 0")
                  + ("; DEAL (difficulty branch)" if m.difficulty else ""))
        return 0
    try:
        text = args.params.read_text()
        params = parse_params(text)
    except (OSError, ValueError) as exc:
        print(f"error: {args.params}: cannot read it ({exc}); run from the repository root", file=sys.stderr)
        return 1
    methods = params.get("methods") if isinstance(params, dict) else None
    if not (isinstance(methods, list) and all(isinstance(m, str) for m in methods)):
        print(f"error: {args.params}: methods: a list of method names, e.g. [random, deal_de]", file=sys.stderr)
        return 1
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"error: {args.params}: methods: unknown method {unknown[0]!r}; known: {', '.join(METHODS)}", file=sys.stderr)
        return 1
    lists = split_lists(methods)
    if all(params.get(k) == v for k, v in lists.items()):
        print(f"methods: {args.params} lists baselines {flow(lists['baselines'])} and deal_methods "
              f"{flow(lists['deal_methods'])}, as methods says")
        return 0
    if args.check:
        print(f"error: {args.params}: baselines and deal_methods disagree with methods; run `make methods`", file=sys.stderr)
        return 1
    try:
        write_text(args.params, rewritten(text, lists))
    except KeyError as key:
        print(f"error: {args.params}: no top-level {key.args[0]}: line to rewrite; add `{key.args[0]}: []`", file=sys.stderr)
        return 1
    print(f"methods: wrote baselines {flow(lists['baselines'])} and deal_methods {flow(lists['deal_methods'])} "
          f"into {args.params}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except WriteError as exc:  # a full disk, a quota: one line, params as they were
        sys.exit(f"error: {exc}")
