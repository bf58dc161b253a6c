"""DEAL: difficulty-aware active learning for semantic segmentation.

The library knows nothing of DVC or of the folder layout; `stages/` does the
I/O. Submodules are imported lazily so that stages which need no torch
(select, report) do not pay for importing it.
"""

__version__ = "0.1.0"
