"""Value specs for params: `(test, what)` pairs, plain Python.

`test(value)` is True for a valid value; `what` says what is expected, for
the one-line error. deal.config and the method table (deal.methods) build
their schemas from them.
"""

from __future__ import annotations

import math
import re


# the largest seed (active-learning, data, reference and scorer seeds): the stages derive torch and numpy
# seeds from it by products (seed * 1000 + round, * 100003 + epoch, ...) that must stay below 2**63
MAX_SEED = 2**31 - 1


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(low: int | None = None, high: int | None = None, why: str = ""):
    bounds = f" >= {low}" if high is None and low is not None else (f" in [{low}, {high}]" if low is not None else "")
    return (lambda v: is_int(v) and (low is None or v >= low) and (high is None or v <= high),
            f"an int{bounds}{why}")


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False,
           why: str = ""):
    def test(v) -> bool:
        if not is_number(v):
            return False
        if low is not None and (v < low or (low_open and v == low)):
            return False
        return high is None or (v < high if high_open else v <= high)

    if low is not None and high is not None:
        bounds = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        bounds = f" {'>' if low_open else '>='} {low:g}"
    else:
        bounds = ""
    return test, f"a number{bounds}{why}"


def seed():
    return integer(0, MAX_SEED)


def boolean():
    return (lambda v: isinstance(v, bool)), "true or false"


def choice(*values):
    return (lambda v: isinstance(v, str) and v in values), f"one of {', '.join(values)}"


def optional(spec):
    test, what = spec
    return (lambda v: v is None or test(v)), f"{what}, or null"


def pair(spec, ordered: bool = False):
    test, what = spec
    return ((lambda v: isinstance(v, list) and len(v) == 2 and all(test(x) for x in v) and (not ordered or v[0] <= v[1])),
            f"[a, b], each {what}" + (", a <= b" if ordered else ""))


def list_of(spec, min_len: int = 1):
    test, what = spec
    return (lambda v: isinstance(v, list) and len(v) >= min_len and all(test(x) for x in v)), f"a list of {what}"


def device():
    return ((lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", v) is not None),
            "auto (CUDA when present), cpu, cuda or cuda:N")
