"""Argument checks shared by every gnet module: a ValueError that says what was expected and what was given."""

from __future__ import annotations

import math
from collections.abc import Sequence


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an int ≥ 1, else ``ValueError``. ``True`` is rejected: a bool is never a count."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def int_at_least(
    name: str, value: object, minimum: int, *, optional: bool = False, maximum: int | None = None
) -> int | None:
    """``value`` if it is an int ≥ ``minimum`` (or None when ``optional``) and ≤ ``maximum``, else ``ValueError``."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{' or None' if optional else ''}, got {value!r}")
    _at_most(name, value, maximum)
    return value


def _at_most(name: str, value: float, maximum: float | None) -> None:
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,} (gnet's limit), got {value!r}")


def finite_number(
    name: str,
    value: object,
    *,
    low: float = 0.0,
    low_open: bool = False,
    high: float = math.inf,
    maximum: float | None = None,
) -> float:
    """``value`` if it is a finite int or float in ``[low, high]`` (``(low, high]`` with ``low_open``) and at most
    ``maximum`` (gnet's limit on a setting whose range has no natural end)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = (f"> {low}" if low_open else f">= {low}") + (f" and <= {high}" if high != math.inf else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    _at_most(name, value, maximum)  # type: ignore[arg-type]
    return value  # type: ignore[return-value]


def one_of(name: str, value: object, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options``, else ``ValueError`` listing them."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value  # type: ignore[return-value]


# ------------------------------------------------------------ the largest values gnet accepts
# Bounds on what a setting may ask for, so that a typo or a hostile value is one clear line, never an
# out-of-memory kill or an overflow deep inside torch. They are generous: memory still has to fit the setting.
MAX_IMAGE_SIZE = 1024  # pixels of the training or evaluation crop (the paper's is 224)
MAX_BATCH_SIZE = 8192  # images per optimizer step (Goyal et al. 2017 trained ImageNet at 8192)
MAX_EVAL_BATCH_SIZE = 1024  # images per forward pass when evaluating
MAX_WIDTH = 4.0  # channel multiplier (16 times the paper's parameters)
MAX_SEED = 2**32 - 1  # numpy's legacy seeding takes 32 bits
MAX_WORKERS = 256  # DataLoader worker processes
MAX_EPOCHS = 100_000
MAX_LR = 10_000.0  # a peak learning rate far beyond any recipe (float32 itself overflows past 3.4e38)
