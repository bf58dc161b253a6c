"""select: the next round's labeled pool, the top `budget.batch` of the scores.

No torch: selection is a sort. The oracle's labels are the dataset's own.
"""

import sys
from pathlib import Path

# imports start at the repository, never at stages/ (a stage script is no module: stages/select.py
# would shadow the standard library's select)
sys.path[0] = str(Path(__file__).resolve().parents[1])
from stages._shared.host import delegate  # noqa: E402

delegate(__file__)  # beside a stage host: fork from it (numpy and matplotlib already imported)

from stages._shared.errors import fail  # noqa: E402
from stages._shared.files import atomic_path, read_pool, read_scores, write_json  # noqa: E402
from stages._shared.params import check_seed, load_params  # noqa: E402
from stages._shared.stage import parse_stage_args, stage_parser  # noqa: E402


def draw_gallery(args, seed, chosen: list[str], scores: dict) -> None:
    """The images this round selected, best first (numpy and matplotlib only)."""
    import numpy as np
    from deal.figures import selection_gallery
    from deal.methods import method

    position = {sid: i for i, sid in enumerate(args.prepared.ids("train"))}
    images = args.prepared.images("train")[[position[i] for i in chosen]]
    scored = None if method(args.method).scores_from == "nothing" else [scores[i] for i in chosen]
    with atomic_path(args.gallery) as tmp:
        selection_gallery(np.asarray(images), scored, chosen, tmp, title=f"{args.method}: selected after {args.round} (seed {seed})")


def main() -> None:
    args = parse_stage_args(stage_parser(
        __doc__, with_next=True, kinds=("select",), pool="the round's pool (JSON)", scores="its scores (scores.csv)",
        out="the next round's pool to write (JSON)", gallery="the figure of the selected images to write (PNG)"))
    params = load_params(prepared=args.prepared)
    seed = check_seed(params, args.seed)
    from deal.acquisition.select import top_b

    from deal.config import round_batch

    batch = round_batch(params, args.round, len(args.prepared.ids("train")))
    pool = read_pool(args.pool)
    scores_path = args.scores
    rows = read_scores(scores_path)
    if len(rows) < batch:
        fail(f"{scores_path}: {len(rows)} images scored but budget.batch is {batch}; raise method_cfg.{args.method}.rho or lower the batch")
    chosen = top_b([sid for sid, _ in rows], [score for _, score in rows], batch)
    new_pool = pool.add(chosen)
    write_json(args.out, {**new_pool.to_dict(), "added": chosen})
    draw_gallery(args, seed, chosen, dict(rows))
    print(f"select: seed {seed} {args.method} {args.round} -> {args.next}: +{len(chosen)} images, {len(new_pool.labeled)} labeled")


if __name__ == "__main__":
    main()
