"""``python -m deal.data.synthetic``: the command line in ``cli``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
