"""Do two revisions compute the same outputs? A manifest of a tiny run, and the difference of two.

A refactor must leave every pool, score, model and evaluation byte for byte as it was. This runs the
real `dvc repro` of a tiny configuration (tests/pipeline_utils.tiny_params of the revision itself, with
every method of its deal/methods.py, 2 rounds, seed 0, the tests' tiny colorization pretraining) in a temporary copy of a git revision, beside
the revision's stage host, and writes the sha256 of every file the run left under data/, runs/,
metrics/ and figures/, each with its kind (pool, score, model, evaluation, ...):

    python tools/same_outputs.py run main --out bench/same_outputs/main.json
    python tools/same_outputs.py run HEAD --out /tmp/head.json
    python tools/same_outputs.py compare bench/same_outputs/main.json /tmp/head.json

`compare` lists every file whose hash differs or that one run alone wrote, by kind, and exits 1 when
anything but a figure or a table differs (a pool, score, model, evaluation, training record, the
prepared or generated data); figures and tables are listed, not failed: a change may mean to change
them. `run` takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT_ROOTS = ("data", "runs", "metrics", "figures")
# the kinds a refactor must leave byte-identical: all but the figures and the report's tables, whose
# bytes a change may mean to change (two runs of one revision agree on every file, figures included)
STRICT = ("pool", "score", "model", "evaluation", "prepared", "data", "run", "other")
# the tiny configuration, applied in the copy by the copy's own test helpers
CONFIGURE = """
import sys, yaml
sys.path[:0] = ["tests", "."]
from pipeline_utils import tiny_params
from deal.methods import METHODS
path = "params.yaml"
params = yaml.safe_load(open(path))
tiny_params(params, methods=tuple(METHODS), rounds={rounds}, seeds=({seed},))
try:  # the end-to-end tests' pretraining (a few colorization steps), so that stage is compared too
    from conftest import TINY_PRETRAIN
    params["pretrain"].update(TINY_PRETRAIN)
except ImportError:
    pass
open(path, "w").write(yaml.safe_dump(params, sort_keys=False))
print(" ".join(METHODS))
"""


def kind_of(name: str) -> str:
    """What a run's file is, by where it lies and what it is called."""
    parts = name.split("/")
    base = parts[-1]
    if parts[0] == "data":
        return "pool" if parts[1] == "pools" else "prepared" if parts[1] == "prepared" else "data"
    if parts[0] == "figures" or base.endswith((".png", ".svg", ".html")):
        return "figure"
    if parts[0] == "metrics":
        return "evaluation" if parts[1] == "eval" and base.endswith((".json", ".npy")) else "table"
    if parts[0] == "runs":
        if base.endswith((".pt", ".pth")):
            return "model"
        if "score" in base or base.endswith(".npy"):
            return "score"
        return "run"
    return "other"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_of(root: Path) -> dict:
    files = {}
    for top in OUTPUT_ROOTS:
        for path in sorted((root / top).rglob("*")):
            name = path.relative_to(root).as_posix()
            if path.is_file() and not path.is_symlink() and "/.resume" not in f"/{name}" \
                    and not path.name.endswith(".gitignore"):
                files[name] = {"kind": kind_of(name), "sha256": sha256(path)}
    return files


def host_script(root: Path) -> str:
    for candidate in ("tools/host.py", "stages/host.py"):
        if (root / candidate).is_file():
            return candidate
    sys.exit(f"error: {root}: no stage host (tools/host.py or stages/host.py)")


def run(revision: str, out: Path, rounds: int, seed: int, keep: bool) -> None:
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=REPO,
                            capture_output=True, text=True)
    if commit.returncode != 0:
        sys.exit(f"error: {revision}: not a git revision of {REPO}")
    commit = commit.stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="same-outputs-"))
    root = work / "repo"
    root.mkdir()
    archive = subprocess.Popen(["git", "archive", commit], cwd=REPO, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(root)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        sys.exit(f"error: git archive {commit} failed")
    python = sys.executable
    # the copy's own library, never an installed one (the venv's editable install points elsewhere)
    env = {**os.environ, "PYTHONPATH": str(root), "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "deal", "GIT_AUTHOR_EMAIL": "deal@localhost",
           "GIT_COMMITTER_NAME": "deal", "GIT_COMMITTER_EMAIL": "deal@localhost"}
    for output in ("dvc.lock",):
        (root / output).unlink(missing_ok=True)
    for lock in root.glob("rounds/*/dvc.lock"):
        lock.unlink()
    methods = subprocess.run([python, "-c", CONFIGURE.format(rounds=rounds, seed=seed)], cwd=root, env=env,
                             capture_output=True, text=True, check=True).stdout.split()
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    started = time.monotonic()
    done = subprocess.run([python, host_script(root), str(Path(python).parent / "dvc"), "repro"], cwd=root, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: dvc repro failed in {root} ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    payload = {"revision": revision, "commit": commit, "methods": methods, "rounds": rounds, "seed": seed,
               "repro_seconds": round(time.monotonic() - started), "files": manifest_of(root)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    tmp.replace(out)
    print(f"{out}: {len(payload['files'])} files of {commit[:10]} ({payload['repro_seconds']} s of dvc repro)")
    if keep:
        print(f"kept: {root}")
    else:
        subprocess.run(["rm", "-rf", str(work)], check=True)


def compare(a_path: Path, b_path: Path) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    fa, fb = a["files"], b["files"]
    differ: dict[str, list[str]] = {}
    for name in sorted(set(fa) | set(fb)):
        if name not in fb:
            note = f"only in {a_path}"
        elif name not in fa:
            note = f"only in {b_path}"
        elif fa[name]["sha256"] != fb[name]["sha256"]:
            note = "differs"
        else:
            continue
        kind = (fa.get(name) or fb[name])["kind"]
        differ.setdefault(kind, []).append(f"  {name}: {note}")
    same = sum(1 for n in fa if n in fb and fa[n]["sha256"] == fb[n]["sha256"])
    print(f"{a['commit'][:10]} vs {b['commit'][:10]}: {same} files identical, "
          f"{sum(map(len, differ.values()))} not")
    for kind in sorted(differ):
        print(f"{kind} ({'must be identical' if kind in STRICT else 'listed only'}):")
        print("\n".join(differ[kind]))
    failed = [k for k in differ if k in STRICT]
    print("SAME" if not failed else f"DIFFERENT: {', '.join(sorted(failed))}")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="a tiny dvc repro of a revision; its outputs' manifest")
    r.add_argument("revision")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--rounds", type=int, default=2)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    c = sub.add_parser("compare", help="what differs between two manifests")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.revision, args.out, args.rounds, args.seed, args.keep)
    else:
        sys.exit(compare(args.a, args.b))


if __name__ == "__main__":
    main()
