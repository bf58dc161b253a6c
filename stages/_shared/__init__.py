"""What the stage scripts share and the library must not know: DVC's stage files and $DVC_STAGE,
params.yaml, the repository's paths, the stages' reads and atomic writes, the stage host's client side.

One idea a module: errors (one-line errors), files (I/O and atomic writes), params (params.yaml read
and checked), stage (which stage this is, its arguments), prepared (the prepared data, an object a
stage passes on), configs (params into the library's configs), resume (run keys and checkpoints),
relaunch (torchrun), host (delegate to the stage host). Imported as `stages._shared` with the
repository first on sys.path: each stage script puts it there, in place of its own folder.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: its stage files (dvc.yaml, rounds/*/dvc.yaml) and code
