"""A stage's errors: one line per problem, naming the file and the fix, then exit status 1 with nothing written."""

from __future__ import annotations

import sys
from pathlib import Path


def fail(lines) -> None:
    """Stop the stage: one line per problem, exit status 1, nothing written. (Said once on several
    processes: deal.launch.report_failure.)"""
    from deal.launch import report_failure

    report_failure("".join(f"error: {line}\n" for line in ([lines] if isinstance(lines, str) else lines)))
    sys.exit(1)


def unreadable(path: str | Path, exc: BaseException) -> None:
    """Stop on a truncated or corrupt input: one line naming it and the fix."""
    reason = (str(exc).strip().splitlines() or [""])[0][:160]
    fail(f"{path}: unreadable, truncated or corrupt ({type(exc).__name__}: {reason}); "
         f"restore it with `dvc checkout -f {path}`, or delete it and rerun `dvc repro`")


def missing(path: str | Path) -> None:
    fail(f"{path}: missing; run `dvc repro` (or `dvc pull`) so the stage that writes it runs")
