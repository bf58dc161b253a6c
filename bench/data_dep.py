"""What it costs DVC to watch a dataset folder outside the repository (prepare's `${dataset.path}` dep).

    python bench/data_dep.py --data ../shared/data/CamVid [--json bench/results/data_dep.json]

In a scratch repository (git + DVC) with one stage that depends on the
dataset folder, it times with the real `dvc`: the first `dvc repro` (DVC
hashes every file), `dvc status` afterwards (DVC's state database answers by
size and mtime, no file is read), `dvc status` after one mask is rewritten
(that file is hashed again and the stage shows as changed), and the same
`dvc status` on a stage without the dependency, for the baseline. The
dataset is copied once into the scratch folder, so the original is never
touched. Medians of --repeat runs for the status timings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import table, write_json  # noqa: E402

DVC = str(Path(sys.executable).parent / "dvc")


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return f"{os.cpu_count()} cores"


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def scratch_repo(root: Path, deps: list[str]) -> None:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=root, check=True)
    (root / "script.sh").write_text("echo prepared > out.txt\n")
    lines = ["stages:", "  prepare:", "    cmd: sh script.sh", "    deps:"]
    lines += [f"      - {d}" for d in [*deps, "script.sh"]] + ["    outs:", "      - out.txt"]
    (root / "dvc.yaml").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a dataset folder, e.g. ../shared/data/CamVid")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data}: not a folder; pass --data with a dataset root")
    with tempfile.TemporaryDirectory(prefix="deal-data-dep-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        shutil.copytree(args.data, data)
        files = [p for p in data.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        scratch_repo(tmp / "with", [str(data)])
        scratch_repo(tmp / "without", [])
        first, _ = timed([DVC, "repro"], tmp / "with")
        first_base, _ = timed([DVC, "repro"], tmp / "without")
        warm = statistics.median(timed([DVC, "status"], tmp / "with")[0] for _ in range(args.repeat))
        base = statistics.median(timed([DVC, "status"], tmp / "without")[0] for _ in range(args.repeat))
        mask = next(p for p in sorted(files) if p.suffix == ".png" and "annot" in p.parent.name)
        mask.write_bytes(mask.read_bytes() + b"\0")  # one edited file
        edited, out = timed([DVC, "status"], tmp / "with")
        if "prepare:" not in out or "modified" not in out:
            raise SystemExit(f"the edit did not show as a changed dependency:\n{out}")
    rows = [
        {"what": "dvc repro, first (hashes every file)", "s": f"{first:.2f}"},
        {"what": "dvc repro, first, no data dependency (baseline)", "s": f"{first_base:.2f}"},
        {"what": "dvc status, unchanged data", "s": f"{warm:.2f}"},
        {"what": "dvc status, no data dependency (baseline)", "s": f"{base:.2f}"},
        {"what": "dvc status after one mask is edited (shows prepare)", "s": f"{edited:.2f}"},
    ]
    print(f"{args.data}: {len(files)} files, {size / 2**20:.0f} MiB; {cpu()}")
    print(table(rows, [("what", "what"), ("s", "seconds")]))
    write_json(args.json, {"data": str(args.data), "files": len(files), "bytes": size, "cpu": cpu(),
                           "first_repro_s": first, "first_repro_baseline_s": first_base, "status_s": warm, "status_baseline_s": base,
                           "status_after_edit_s": edited})


if __name__ == "__main__":
    main()
