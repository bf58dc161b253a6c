"""Where one active-learning round's time goes: each stage's wall time, split
into DVC, torch import and the stage's own work.

    python bench/round.py --project PATH [--seed 0] --method deal_de --round r3 --json bench/results/round.json

PATH is a project whose pipeline has run (e.g. the repository after
`make repro`); its outputs are rewritten with identical content. For every
stage of the round (train, errors, difficulty, score, select, evaluate,
analyze) it times: the script started directly (python imports torch
itself), the script through a running stage host (torch already imported),
and `dvc repro --force --single-item` of the stage beside the host (adds
DVC's own cost: hashing, the rewrite of the stage's rounds/<kind>/dvc.lock).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import table, write_json  # noqa: E402

BIN = Path(sys.executable).parent


def stage_commands(project: Path, seed: int, method: str, round_id: str, deal: bool) -> list[tuple[str, list[str]]]:
    """The round's stage commands as DVC resolved and ran them (the project's dvc.lock files): the
    stage files name every path, so the commands are read from there, never rebuilt here."""
    import shlex

    import yaml

    step = round_id.replace("r", "s")
    name = f"{seed}-{method}"
    kinds = [("train", round_id)] + ([("errors", step), ("difficulty", step), ("score_deal", step)] if deal else [("score", step)])
    kinds += [("select", step), ("label", step), ("evaluate", round_id)] + ([("analyze", step)] if deal else [])
    cmds = []
    for kind, at in kinds:
        stage = f"{kind}@{name}-{at}"
        lock = project / "rounds" / kind / "dvc.lock"
        found = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).get(stage) if lock.is_file() else None
        if found is None:
            sys.exit(f"error: {lock}: no stage {stage}; run `make repro` in {project} first")
        argv = shlex.split(found["cmd"])
        # the command names no stage (DVC passes it in $DVC_STAGE): by hand, --stage does
        cmds.append((stage, (argv[1:] if argv[0] == "python" else argv) + ["--stage", stage]))
    return cmds


def timed_run(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="deal_de")
    parser.add_argument("--round", default="r3")
    parser.add_argument("--json")
    args = parser.parse_args()
    import yaml

    params = yaml.safe_load((args.project / "params.yaml").read_text())
    ids = [r["id"] for r in params["rounds"]]
    next_id = ids[ids.index(args.round) + 1]
    deal = args.method in params["deal_methods"]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TQDM_DISABLE": "1"}
    env.pop("DEAL_STAGE_HOST", None)
    commands = stage_commands(args.project, args.seed, args.method, args.round, deal)
    # 1) direct: each script imports torch itself
    direct = {name: timed_run([str(BIN / "python"), *cmd], args.project, env) for name, cmd in commands}
    # 2) and 3) beside one stage host: the script alone, then through dvc
    host_script = (
        "import json, subprocess, sys, time\n"
        "cmds = json.loads(sys.argv[1]); out = {}\n"
        "for name, cmd in cmds:\n"
        "    t = time.perf_counter(); subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "    out[name] = [time.perf_counter() - t]\n"
        "    target = 'rounds/' + name.split('@')[0] + '/dvc.yaml:' + name\n"
        "    t = time.perf_counter(); subprocess.run(['dvc', 'repro', '--force', '--single-item', target], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "    out[name].append(time.perf_counter() - t)\n"
        "print(json.dumps(out))\n"
    )
    payload = json.dumps([[name, ["python", *cmd]] for name, cmd in commands])
    done = subprocess.run([str(BIN / "python"), "tools/host.py", str(BIN / "python"), "-c", host_script, payload],
                          cwd=args.project, env=env, check=True, capture_output=True, text=True)
    hosted = json.loads(done.stdout.strip().splitlines()[-1])
    rows = []
    for name, _ in commands:
        work, with_dvc = hosted[name]
        rows.append({
            "stage": name,
            "direct_s": round(direct[name], 2),
            "host_s": round(work, 2),
            "dvc_host_s": round(with_dvc, 2),
            "import_s": round(max(0.0, direct[name] - work), 2),
            "dvc_overhead_s": round(max(0.0, with_dvc - work), 2),
        })
    total = {k: round(sum(r[k] for r in rows), 2) for k in ("direct_s", "host_s", "dvc_host_s", "import_s", "dvc_overhead_s")}
    rows.append({"stage": "round total", **total})
    print(f"one round of {args.method} ({args.round} -> {next_id}) in {args.project}")
    print(table(rows, [("stage", "stage"), ("direct_s", "script alone s"), ("host_s", "with host s"),
                       ("import_s", "torch import s"), ("dvc_host_s", "dvc repro + host s"), ("dvc_overhead_s", "DVC s")]))
    write_json(args.json, {"project": str(args.project), "method": args.method, "round": args.round, "stages": rows})


if __name__ == "__main__":
    main()
