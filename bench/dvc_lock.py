"""What DVC's per-stage lock rewrite costs, for the pipeline as it is split
(rounds/<kind>/dvc.lock) and as one merged dvc.lock would be.

    python bench/dvc_lock.py [--project PATH] [--json bench/results/dvc_lock.json]

After every stage it runs, DVC parses the stage's whole dvc.lock (ruamel round
trip) and writes it back (dvc.utils.serialize.modify_yaml). This times that
call on each lock of a project whose pipeline has run, and on all its entries
merged into one file, then multiplies by the stages each lock holds: the
rewrite cost of one full `dvc repro`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import table, write_json  # noqa: E402


def rewrite_seconds(path: Path, repeats: int = 3) -> float:
    """Best of `repeats` of DVC's own parse-and-dump of `path` (on a copy)."""
    from dvc.utils.serialize import modify_yaml

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "dvc.lock"
        shutil.copy(path, copy)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            with modify_yaml(str(copy)):
                pass
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    locks = [args.project / "dvc.lock", *sorted(args.project.glob("rounds/*/dvc.lock"))]
    missing = [p for p in locks if not p.is_file()]
    if missing or len(locks) < 2:
        sys.exit(f"error: {args.project}: no dvc.lock / rounds/*/dvc.lock; run `make repro` there first")
    rows, merged = [], {}
    for path in locks:
        stages = yaml.safe_load(path.read_text())["stages"]
        merged.update(stages)
        per_stage = rewrite_seconds(path)
        rows.append({"lock": str(path.relative_to(args.project)), "stages": len(stages),
                     "kb": round(path.stat().st_size / 1024, 1), "rewrite_s": round(per_stage, 3),
                     "run_total_s": round(per_stage * len(stages), 1)})
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "dvc.lock"
        one.write_text(yaml.safe_dump({"schema": "2.0", "stages": merged}, sort_keys=False))
        per_stage = rewrite_seconds(one)
        single = {"lock": "(all in one dvc.lock)", "stages": len(merged), "kb": round(one.stat().st_size / 1024, 1),
                  "rewrite_s": round(per_stage, 3), "run_total_s": round(per_stage * len(merged), 1)}
    split_total = round(sum(r["run_total_s"] for r in rows), 1)
    print(table(rows + [single], [("lock", "lock"), ("stages", "stages"), ("kb", "KB"),
                                  ("rewrite_s", "rewrite s / stage"), ("run_total_s", "s per full run")]))
    print(f"lock rewrites in one full run: {split_total} s split, {single['run_total_s']} s as one file")
    if args.json:
        write_json(args.json, {"locks": rows, "single": single, "split_total_s": split_total})


if __name__ == "__main__":
    main()
