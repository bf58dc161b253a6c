"""The DVC target of a stage name: a per-(seed, method, round) stage lives in its kind's
file under rounds/, and DVC wants that file before the name.

    python tools/target.py train@0-deal_de-r1         # -> rounds/train/dvc.yaml:train@0-deal_de-r1
    dvc status $(python tools/target.py errors@0-deal_de-s0)
    make stage NAME=train@0-deal_de-r1                 # dvc repro of that stage (and what it needs)

A name of the top-level dvc.yaml (prepare, init@0, report, ...) is printed as it is.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def target(name: str) -> str:
    """`name` as `dvc repro` and `dvc status` take it; SystemExit naming the kinds when it names none."""
    kinds = sorted(p.parent.name for p in (ROOT / "rounds").glob("*/dvc.yaml"))
    kind = name.split("@", 1)[0].split(":")[-1]
    if ":" in name:  # already a target
        return name
    if kind in kinds:
        return f"rounds/{kind}/dvc.yaml:{name}"
    import yaml

    top = (yaml.safe_load((ROOT / "dvc.yaml").read_text()) or {}).get("stages", {})
    if kind in top:
        return name
    sys.exit(f"error: {name}: no stage kind {kind!r}; the kinds are {', '.join(sorted(set(kinds) | set(top)))} "
             "(a round's stage is <kind>@<seed>-<method>-<round or step>, e.g. train@0-deal_de-r1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", metavar="NAME", help="stage names as `dvc repro` prints them, without the file")
    args = parser.parse_args()
    print(" ".join(target(name) for name in args.names))


if __name__ == "__main__":
    main()
