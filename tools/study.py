"""study: a multi-seed study that outlives a machine, one committed file per finished seed.

A study is a folder (studies/<name>/) holding its recipe (recipe.yaml: the
params every seed runs, but `seeds` and the data's local path), one small
CSV per finished seed (seed<N>.csv: that seed's rows of metrics/curves.csv),
seeds.json (for each seed: the commit, CPU and precision that produced it)
and the assembled tables (summary.csv, paired.csv, report.md, curves.png:
the report stage's, over every seed file present). A seed is run by the
pipeline like any other; the study only keeps its small results, so a later
session adds seeds without rerunning the finished ones:

    python tools/study.py setup studies/camvid-seeds --seeds 2 3 [--data /data/CamVid]  # params.yaml = recipe + seeds
    python tools/host.py dvc repro                                                      # runs those seeds
    python tools/study.py collect studies/camvid-seeds                                  # their rows in, then assemble
    python tools/study.py assemble studies/camvid-seeds                                 # the tables from the files alone
    python tools/study.py run studies/camvid-seeds --seeds 0 1 2 --data /data/CamVid    # setup, repro, collect per seed
    python tools/study.py run studies/camvid-seeds --seeds 0 --replace --data ...       # rerun a seed it holds

A new study: write params.yaml (make preset ...); `run` (or `collect` after a
first run) writes the recipe from it.

`collect` refuses a run whose params differ from the recipe (other than
seeds and dataset.path), a seed already in the study with other numbers
(--replace to overwrite it), and a seed whose device or precision (what
`auto` resolved to) differs from the study's other seeds (--mixed to keep it).
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: stages/_shared, deal

from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import atomic_path, read_json, write_json  # noqa: E402
from stages._shared.params import load_params  # noqa: E402
from deal.config import SYNTHETIC_PATH, ParamsError, check_params, parse_params  # noqa: E402

IGNORED = (("seeds",), ("dataset", "path"))  # what may differ between a study's runs
MACHINE_KEYS = ("cpu", "device", "precision")  # what seeds.json records of the run of each seed
UNIT_COLUMNS = ("miou", "pixel_accuracy")  # shares in [0, 1], as the iou_<class> columns (empty: an absent class)


def stage_output(stage: str, name: str, required: bool = True) -> Path | None:
    """Where dvc.yaml's `stage` writes its file called `name` (outs, metrics or plots): dvc.yaml names it.
    None, when not `required`, for a pipeline without that stage or file."""
    spec = yaml.safe_load(Path("dvc.yaml").read_text())["stages"].get(stage, {})
    for key in ("outs", "metrics", "plots"):
        for entry in spec.get(key, []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            if Path(path).name == name:
                return Path(path)
    if required:
        fail(f"dvc.yaml: stage {stage} writes no {name}; restore dvc.yaml (git checkout dvc.yaml)")
    return None


def recipe_of(params: dict) -> dict:
    recipe = copy.deepcopy(params)
    for path in IGNORED:
        node = recipe
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    return recipe


def differences(a, b, prefix: str = "") -> list[str]:
    """The dotted keys where two params trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            out += differences(a.get(key), b.get(key), f"{prefix}{key}.") if key in a and key in b else [f"{prefix}{key}"]
        return out
    return [] if a == b else [prefix.rstrip(".")]


def read_recipe(study: Path) -> dict:
    """recipe.yaml, with what the study's tables are built from (methods, rounds, dataset.kind) checked."""
    path = study / "recipe.yaml"
    try:
        recipe = parse_params(path.read_text())
    except FileNotFoundError:
        fail(f"{path}: missing; a study starts with `python tools/study.py collect {study}` after a first run")
    except Exception as exc:  # yaml errors
        fail(f"{path}: unreadable ({str(exc).splitlines()[0]}); restore it (git checkout {path})")
    problems = recipe_problems(recipe)
    if problems:
        fail([f"{path}: {line}; restore it (git checkout {path})" for line in problems])
    return recipe


def recipe_problems(recipe) -> list[str]:
    """What a recipe lacks of the keys a study's tables read, one line each."""
    if not isinstance(recipe, dict):
        return [f"holds {type(recipe).__name__} {str(recipe)[:40]!r}, not the params mapping"]
    out = []
    methods, rounds, dataset = recipe.get("methods"), recipe.get("rounds"), recipe.get("dataset")
    if not (isinstance(methods, list) and methods and all(isinstance(m, str) and m for m in methods)):
        out.append(f"methods: {methods!r}; a non-empty list of method names" if "methods" in recipe else "no methods")
    if not (isinstance(rounds, list) and rounds and all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in rounds)):
        out.append(f"rounds: {rounds!r}; a non-empty list of {{id: ...}}" if "rounds" in recipe else "no rounds")
    if not (isinstance(dataset, dict) and isinstance(dataset.get("kind"), str)):
        out.append("no dataset.kind")
    baseline = recipe.get("baseline_ref")
    if baseline is not None and not isinstance(baseline, str):
        out.append(f"baseline_ref: {baseline!r}; a method name or null")
    return out


def read_manifest(study: Path, required: bool) -> dict:
    """seeds.json: seed (a decimal string) -> the run that produced its file (commit, cpu, device,
    precision, ...); {} when it is absent and not `required`. One line per problem."""
    path = study / "seeds.json"
    fix = f"restore it (git checkout {path})"
    if not path.is_file():
        if required:
            fail(f"{path}: missing; it lists the study's seeds (collect writes it: "
                 f"`python tools/study.py collect {study}`), or {fix}")
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        fail(f"{path}: not JSON ({str(exc).splitlines()[0]}); {fix}")
    if not isinstance(manifest, dict):
        fail(f"{path}: holds a {type(manifest).__name__}, not an object of seed -> its run "
             f'({{"0": {{"cpu": ..., "device": ..., "precision": ...}}}}); {fix}')
    problems = []
    for seed, run in manifest.items():
        if not (seed.isascii() and seed.isdigit() and str(int(seed)) == seed):
            problems.append(f"{path}: key {seed!r} is no seed (a non-negative integer); {fix}")
        elif not isinstance(run, dict):
            problems.append(f"{path}: seed {seed}: {run!r} is not an object (cpu, device, precision, ...); {fix}")
        else:
            lacking = [key for key in MACHINE_KEYS if not isinstance(run.get(key), str)]
            if lacking:
                problems.append(f"{path}: seed {seed}: no {', '.join(lacking)} (what ran it); {fix}")
    if required and not manifest:
        problems.append(f"{path}: lists no seed; collect one (`python tools/study.py collect {study}`)")
    if problems:
        fail(problems)
    return manifest


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "deal", "stages"],
                           capture_output=True, text=True).stdout.strip()
    return (done.stdout.strip() or "unknown") + ("+uncommitted" if dirty else "")


def seed_params(recipe: dict, seeds: list[int], data: str | None) -> dict:
    """params.yaml for these seeds of the recipe on this machine, checked."""
    params = copy.deepcopy(recipe)
    params["seeds"] = list(seeds)
    if data:
        params["dataset"]["path"] = data
    elif params["dataset"]["kind"] == "synthetic":
        params["dataset"]["path"] = SYNTHETIC_PATH
    else:
        fail(f"--data: give the {params['dataset']['kind']} root on this machine (dataset.path), e.g. --data /data/CamVid")
    try:
        check_params(params)
    except ParamsError as exc:
        fail(exc.lines)
    return params


def setup(args) -> None:
    study = Path(args.study)
    params = seed_params(read_recipe(study), args.seeds, args.data)
    text = f"# {study}/recipe.yaml with seeds {args.seeds} (python tools/study.py setup)\n"
    import yaml

    with atomic_path("params.yaml") as tmp:
        tmp.write_text(text + yaml.safe_dump(params, sort_keys=False))
    print(f"study: params.yaml is {study}'s recipe with seeds {', '.join(map(str, args.seeds))}; "
          f"run `python tools/host.py dvc repro`, then `python tools/study.py collect {study}`")


def venv_dvc() -> str:
    """The venv's dvc, beside this python (else the one on PATH)."""
    dvc = Path(sys.executable).parent / "dvc"
    return str(dvc) if dvc.is_file() else "dvc"


def pipeline_changes() -> list[str]:
    """The stages `dvc status` lists as changed: while there are any, metrics/curves.csv may come
    from other params or code than the ones collect would record."""
    done = subprocess.run([venv_dvc(), "status", "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        fail(f"dvc status: {last}; collect runs where `dvc repro` ran (the repository root)")
    return sorted(json.loads(done.stdout or "{}"))


def machine_of(params: dict) -> dict:
    """What ran a seed, as seeds.json records it: the precision `auto` resolved to changes the numbers."""
    from deal.runtime import cpu_name, resolve_device, resolve_precision

    device = resolve_device(params["train"]["device"])
    precision = resolve_precision(params["train"]["precision"], device)
    return {"cpu": cpu_name(), "device": str(device),
            "precision": "fp32" if precision is None else str(precision).replace("torch.", "")}


def collect(args) -> None:
    """This run's seeds into the study; everything is checked before the first file is written."""
    study = Path(args.study)
    params = load_params()
    recipe_path = study / "recipe.yaml"
    if recipe_path.is_file():
        changed = differences(read_recipe(study), recipe_of(params))
        if changed:
            fail(f"params.yaml: differs from {recipe_path} in {', '.join(changed)}; a study's seeds share one recipe "
                 f"(python tools/study.py setup {study} --seeds ...), or start a new study folder")
    curves = stage_output("report", "curves.csv")
    changed = pipeline_changes()
    if changed:
        fail(f"{curves}: not what params.yaml gives: `dvc status` lists {', '.join(changed[:3])}"
             f"{' ...' if len(changed) > 3 else ''}; run `python tools/host.py dvc repro` first")
    text = curves.read_text() if curves.is_file() else ""
    header, *lines = text.splitlines() or [""]
    seed_texts = {seed: header + "\n" + "\n".join(ln for ln in lines if ln.split(",", 1)[0] == str(seed)) + "\n"
                  for seed in params["seeds"]}
    recipe = recipe_of(params)
    rows, problems = [], []
    for seed, seed_text in seed_texts.items() if text else ():
        found, wrong = seed_rows(seed_text, curves, seed, recipe,
                                 "a study keeps scored rounds; run `python tools/host.py dvc repro` first")
        rows += found
        problems += wrong
    problems = problems or [f"{curves}: {line}; run `python tools/host.py dvc repro` first"
                            for line in incomplete(rows, params["seeds"], params)]
    if problems:
        fail(problems)
    manifest = read_manifest(study, required=False)
    # the study's other seeds, as assemble reads them after this collect: checked before anything is written
    kept = [int(seed) for seed in manifest if int(seed) not in params["seeds"]]
    problems = [line for seed, path in seed_files(study, kept, coming=params["seeds"]).items()
                for line in read_seed_file(path, seed, recipe)[1]]
    if problems:
        fail(problems)
    machine = machine_of(params)
    ran = {str(seed) for seed in params["seeds"]}
    # seeds of one study compare as one recipe: bf16 on one machine and fp32 on another is not that
    others = sorted({(m["device"], m["precision"]) for s, m in manifest.items() if s not in ran}
                    - {(machine["device"], machine["precision"])})
    if others and not args.mixed:
        kept = ", ".join(f"{device} {precision}" for device, precision in others)
        fail(f"{study / 'seeds.json'}: the study's other seeds ran in {kept}, this run in {machine['device']} "
             f"{machine['precision']}; run it where the others ran (or set train.precision in the recipe), "
             f"or pass --mixed to keep both (report.md lists the machines)")
    writes = {}
    for seed, seed_text in seed_texts.items():
        path = study / f"seed{seed}.csv"
        same = path.is_file() and path.read_text() == seed_text
        if path.is_file() and not same and not args.replace:
            fail(f"{path}: holds other numbers for seed {seed}; keep it, or pass --replace to overwrite it")
        writes[seed] = (path, seed_text, sum(r["seed"] == seed for r in rows), same and str(seed) in manifest)
    if not recipe_path.is_file():
        write_recipe(study, params)
    for seed, (path, seed_text, count, known) in writes.items():
        if known:  # the same numbers again: the seed keeps the provenance of the run that produced them
            print(f"study: {path}: seed {seed} already in the study with these numbers")
            continue
        with atomic_path(path) as tmp:
            tmp.write_text(seed_text)
        manifest[str(seed)] = {"commit": commit(), **machine, "collected": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        print(f"study: {path}: seed {seed}, {count} rows")
    reference = stage_output("reference", "reference.json", required=False)
    if reference is not None and reference.is_file() and read_json(reference).get("computed"):
        write_json(study / "reference.json", read_json(reference))
    write_json(study / "seeds.json", dict(sorted(manifest.items(), key=lambda kv: int(kv[0]))))
    assemble(args)


def write_recipe(study: Path, params: dict) -> None:
    import yaml

    with atomic_path(study / "recipe.yaml") as tmp:
        tmp.write_text(f"# the params every seed of {study} runs (seeds and dataset.path aside)\n"
                       + yaml.safe_dump(recipe_of(params), sort_keys=False))


def incomplete(rows: list[dict], seeds, recipe: dict) -> list[str]:
    """What the rows lack of each seed's full curves (every method, every round of the recipe)."""
    have = {(r["seed"], r["method"], r["round"]) for r in rows}
    out = []
    for seed in seeds:
        lacking = [f"{m} {r['id']}" for m in recipe["methods"] for r in recipe["rounds"] if (seed, m, r["id"]) not in have]
        if lacking:
            out.append(f"seed {seed} lacks {', '.join(lacking[:4])}{' ...' if len(lacking) > 4 else ''}")
    return out


def seed_rows(text: str, name: Path, seed: int, recipe: dict, fix: str) -> tuple[list[dict], list[str]]:
    """The rows of seed `seed`'s curves (`text`, a CSV read from `name`), numbers as numbers, and
    what is wrong with them, one line for the first row of each kind of fault: a row of another
    seed, of a method or round the recipe has not, a second row for one (method, round), a count
    or score that is not a finite number in its range."""
    import csv
    import io
    import math

    try:
        header, *table = list(csv.reader(io.StringIO(text)))
    except (ValueError, csv.Error) as exc:
        return [], [f"{name}: unreadable ({type(exc).__name__}: {exc}); {fix}"]
    lacking = [c for c in ("seed", "method", "round", "labeled", "percent_labeled", "miou") if c not in header]
    if lacking:
        return [], [f"{name}: no column {', '.join(lacking)}; {fix}"]
    methods, rounds = recipe["methods"], [r["id"] for r in recipe["rounds"]]
    shares = [c for c in header if c in UNIT_COLUMNS or c.startswith("iou_")]
    problems: dict[str, str] = {}  # kind -> the line of its first row
    rows, seen = [], set()

    def number(cell, integer: bool = False):
        try:
            value = int(cell) if integer else float(cell)
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    def share(cell) -> bool:
        value = number(cell)
        return value is not None and 0 <= value <= 1

    for cells in table:
        if not cells:
            continue
        if len(cells) != len(header):
            problems.setdefault("cells", f"{name}: a row of {len(cells)} cells under a header of {len(header)}; {fix}")
            continue
        raw = dict(zip(header, cells))
        what = f"{raw['method']} {raw['round']}"
        if number(raw["seed"], integer=True) != seed:
            problems.setdefault("seed", f"{name}: a row of seed {raw['seed']} ({what}) among seed {seed}'s "
                                        f"(seed<N>.csv holds seed N's rows alone); {fix}")
            continue
        if raw["method"] not in methods or raw["round"] not in rounds:
            problems.setdefault("recipe", f"{name}: seed {seed} {what}: no such method or round in the recipe "
                                          f"({', '.join(methods)}; {', '.join(rounds)}); {fix}")
            continue
        if (raw["method"], raw["round"]) in seen:
            problems.setdefault("twice", f"{name}: seed {seed} {what}: a second row; {fix}")
            continue
        seen.add((raw["method"], raw["round"]))
        labeled, percent = number(raw["labeled"], integer=True), number(raw["percent_labeled"])
        if labeled is None or labeled < 1 or percent is None or not 0 < percent <= 100:
            problems.setdefault("count", f"{name}: seed {seed} {what}: labeled {raw['labeled']!r}, percent_labeled "
                                         f"{raw['percent_labeled']!r}; an image count >= 1 and a percentage in (0, 100]; {fix}")
            continue
        bad = [c for c in shares if not (share(raw[c]) or (raw[c] == "" and c != "miou"))]
        if bad:
            problems.setdefault("share", f"{name}: seed {seed} {what}: {', '.join(f'{c} {raw[c]!r}' for c in bad[:3])}; "
                                         f"a score is a finite number in [0, 1] (an absent class's IoU: empty); {fix}")
            continue
        rows.append({**raw, "seed": seed, "labeled": labeled, "percent_labeled": percent, "miou": float(raw["miou"])})
    return rows, list(problems.values())


def read_seed_file(path: Path, seed: int, recipe: dict) -> tuple[list[dict], list[str]]:
    """A study's seed<N>.csv, as `seed_rows` checks it."""
    fix = f"restore it (git checkout {path}) or collect seed {seed} again (collect --replace)"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: unreadable ({type(exc).__name__}: {exc}); {fix}"]
    return seed_rows(text, path, seed, recipe, fix)


def seed_files(study: Path, seeds, coming=()) -> dict[int, Path]:
    """seed -> seed<N>.csv, for exactly `seeds` (the seeds seeds.json lists) and those `coming` (this
    collect's): a listed seed's missing file, and any other seed*.csv (a copy such as
    seed1_old.csv, a seed never collected) stop it, one line each."""
    listed = {int(seed): study / f"seed{int(seed)}.csv" for seed in seeds}
    manifest = study / "seeds.json"
    problems = [f"{path}: missing, but {manifest} lists seed {seed}; restore it (git checkout {path}), or "
                f"collect seed {seed} again" for seed, path in sorted(listed.items()) if not path.is_file()]
    allowed = set(listed.values()) | {study / f"seed{int(seed)}.csv" for seed in coming}
    for path in sorted(study.glob("seed*.csv")):
        if path in allowed:
            continue
        number = path.stem[4:]
        if number.isascii() and number.isdigit() and str(int(number)) == number:
            problems.append(f"{path}: {manifest} does not list seed {number}; collect that seed (which records its run), "
                            f"or move the file out of {study}")
        else:
            seeds = sorted(set(listed) | {int(seed) for seed in coming})
            problems.append(f"{path}: not a seed file (a study reads seed<N>.csv of the seeds {manifest} lists: "
                            f"{', '.join(map(str, seeds)) or 'none'}); move it out of {study}")
    if problems:
        fail(problems)
    return dict(sorted(listed.items()))


def assemble(args) -> None:
    """The study's tables from its files alone: the seeds seeds.json lists, each from its seed<N>.csv,
    every row checked before anything is written."""
    study = Path(args.study)
    recipe = read_recipe(study)
    manifest = read_manifest(study, required=True)
    files = seed_files(study, manifest)
    rows, problems = [], []
    for seed, path in files.items():
        found, wrong = read_seed_file(path, seed, recipe)
        rows += found
        problems += wrong
    if problems:
        fail(problems)
    seeds = sorted(files)
    lacking = incomplete(rows, seeds, recipe)
    if lacking:
        fail([f"{study}: {line} of {study / 'recipe.yaml'}; rerun that seed and collect it (--replace)" for line in lacking])
    from deal.figures import plot_curves
    from deal.published import published
    from deal.report import analyse, markdown, paired_csv, summary_csv

    methods = recipe["methods"]
    rounds = [r["id"] for r in recipe["rounds"]]
    result = analyse(rows, methods, rounds, recipe.get("baseline_ref"))
    reference = read_json(study / "reference.json") if (study / "reference.json").is_file() else {}
    full = reference.get("miou") if isinstance(reference, dict) and reference.get("computed") else None
    machines = sorted({f"{m['cpu']} ({m['precision']})" for m in manifest.values()})
    kind = recipe["dataset"]["kind"]
    text = markdown(f"study {study.name}: {kind}, seeds {', '.join(map(str, seeds))}", methods, rounds, result)
    text += ("\nAssembled by `python tools/study.py assemble " + str(study) + "` from "
             + ", ".join(p.name for p in files.values()) + (f"; run on {'; '.join(machines)}" if machines else "") + ".\n")
    for name, content in (("summary.csv", summary_csv(result["bands"], full)), ("paired.csv", paired_csv(result["comparison"])),
                          ("report.md", text)):
        with atomic_path(study / name) as tmp:
            tmp.write_text(content)
    write_json(study / "summary.json", result["summary"])
    with atomic_path(study / "curves.png") as tmp:
        plot_curves(result["bands"], tmp, title=f"{study.name}: {kind}, {len(seeds)} seed{'s' * (len(seeds) > 1)}",
                    reference=full, published=published(kind))
    print(text, end="")


def run(args) -> None:
    """Each seed in turn: setup, `dvc repro` beside the stage host, collect (a seed's results are in
    the study, ready to commit, as soon as it is done; an interrupted seed reruns from DVC's cache)."""
    study = Path(args.study)
    # a seed already in the study is refused before its repro, not by collect after it (minutes later);
    # --replace reruns it and overwrites its numbers where they differ (identical ones keep their record)
    listed = read_manifest(study, required=False)
    present = [seed for seed in args.seeds if str(seed) in listed or (study / f"seed{seed}.csv").is_file()]
    if present and not args.replace:
        fail(f"{study}: seed{'s' * (len(present) > 1)} {', '.join(map(str, present))} already in the study; "
             f"leave {'them' if len(present) > 1 else 'it'} out of --seeds, or pass --replace to rerun "
             f"{'them' if len(present) > 1 else 'it'} here and overwrite the numbers")
    if not (study / "recipe.yaml").is_file():  # a new study: params.yaml (make preset ...) is its recipe
        recipe = recipe_of(load_params())
        seed_params(recipe, args.seeds, args.data)  # checked before the recipe is written
        write_recipe(study, recipe)
        print(f"study: {study / 'recipe.yaml'}: written from params.yaml")
    for i, seed in enumerate(args.seeds):
        setup(argparse.Namespace(study=args.study, seeds=[seed], data=args.data))
        start = time.monotonic()
        done = subprocess.run([sys.executable, str(Path(__file__).parent / "host.py"), venv_dvc(), "repro"])
        if done.returncode != 0:
            again = " ".join(["python tools/study.py run", str(study), "--seeds", *map(str, args.seeds[i:])]
                             + (["--data", args.data] if args.data else []) + (["--mixed"] if args.mixed else [])
                             + (["--replace"] if args.replace else []))
            fail(f"dvc repro of seed {seed} failed (exit {done.returncode}); fix it and rerun `{again}`")
        elapsed = time.monotonic() - start
        collect(argparse.Namespace(study=args.study, replace=args.replace, mixed=args.mixed))
        manifest = read_json(study / "seeds.json")
        manifest[str(seed)].setdefault("repro_s", round(elapsed))  # a seed already in the study keeps its time
        write_json(study / "seeds.json", manifest)
        print(f"study: seed {seed} done in {elapsed / 60:.1f} min; commit {study}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("setup", help="write params.yaml: the study's recipe with these seeds")
    p.add_argument("study")
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--data", help="the dataset's root on this machine (dataset.path)")
    p = commands.add_parser("collect", help="this run's seeds (metrics/curves.csv) into the study, then assemble")
    p.add_argument("study")
    p.add_argument("--replace", action="store_true", help="overwrite a seed already in the study")
    p.add_argument("--mixed", action="store_true",
                   help="keep a seed whose device or precision differs from the study's other seeds")
    p = commands.add_parser("assemble", help="the study's tables and figure from its seed files")
    p.add_argument("study")
    p = commands.add_parser("run", help="setup, dvc repro and collect, one seed after the other")
    p.add_argument("study")
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--data", help="the dataset's root on this machine (dataset.path)")
    p.add_argument("--mixed", action="store_true", help="as collect's --mixed")
    p.add_argument("--replace", action="store_true",
                   help="rerun seeds already in the study and overwrite their numbers (else they are refused "
                        "before anything runs)")
    args = parser.parse_args()
    {"setup": setup, "collect": collect, "assemble": assemble, "run": run}[args.command](args)


if __name__ == "__main__":
    main()
