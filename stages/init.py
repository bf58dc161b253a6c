"""init: every method's round-0 pool is the shared initial pool (no torch)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from host import delegate  # noqa: E402

delegate(__file__)  # beside a stage host: fork from it (numpy and matplotlib already imported)

from common import POOLS, atomic_dir, load_params, read_json  # noqa: E402


def main() -> None:
    params = load_params()
    first = params["rounds"][0]["id"]
    pool = read_json(POOLS / "initial.json")
    with atomic_dir(POOLS / first) as work:
        for method in params["methods"]:
            (work / f"{method}.json").write_text(json.dumps(pool, indent=2) + "\n")
    print(f"init: round {first} pools for {', '.join(params['methods'])}: {len(pool['labeled'])} labeled images each")


if __name__ == "__main__":
    main()
