"""Run by tests/test_resume.py beside the stage host (its stages fork from it, so each starts at once).

    python tools/host.py python tests/resume_driver.py CASES.json RESULTS.json

CASES.json: {"argv": the stage's command, "outputs": files to compare, "checkpoint": where the stage
resumes from, "stale": a checkpoint of the base params' run, "cases": {label: params.yaml text},
"clean": the labels to compare with a clean run}. For each case: params.yaml := its text; the stale
checkpoint put back; the stage run (it must not resume); then, for the labels in "clean", the stage
run again with no checkpoint at all (a clean run), each after its outputs were removed. RESULTS.json: per label, both runs' exit status (and error lines), whether the first
resumed or ignored the checkpoint and left it behind, whether both wrote the same bytes, and
their seconds.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    checkpoint, stale = Path(spec["checkpoint"]), Path(spec["stale"])
    results = {}
    for label, text in spec["cases"].items():
        Path("params.yaml").write_text(text)
        outputs, runs, seconds = [], [], []
        for with_checkpoint in (True, False) if label in spec["clean"] else (True,):
            checkpoint.unlink(missing_ok=True)
            for path in spec["outputs"]:  # what a failed run leaves is nothing, not the last run's file
                Path(path).unlink(missing_ok=True)
            if with_checkpoint:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(stale, checkpoint)
            start = time.monotonic()
            done = subprocess.run([sys.executable, *spec["argv"]], capture_output=True, text=True)
            seconds.append(round(time.monotonic() - start, 2))
            runs.append(done)
            outputs.append([Path(p).read_bytes() if Path(p).is_file() else None for p in spec["outputs"]])
            if with_checkpoint:
                left = checkpoint.exists()
        resumed = runs[0]
        results[label] = {
            "status": [r.returncode for r in runs],
            "ignored": "written by another run (its params, inputs or code differ); starting from epoch 0" in resumed.stdout,
            "resumed": "resuming from epoch" in resumed.stdout,
            "left": left,
            "equal": outputs[0] == outputs[1] if len(outputs) == 2 else None,  # no clean run asked for
            # a failed run's last lines (a one-line refusal is all of it)
            "errors": [[line for line in r.stderr.splitlines() if line.strip()][-3:] for r in runs if r.returncode],
            "seconds": seconds,
        }
        checkpoint.unlink(missing_ok=True)
    Path(sys.argv[2]).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
