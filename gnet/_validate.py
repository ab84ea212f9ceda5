"""Argument checks shared by every gnet module: a ValueError that says what was expected and what was given."""

from __future__ import annotations

import math
from collections.abc import Sequence


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an int ≥ 1, else ``ValueError``. ``True`` is rejected: a bool is never a count."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def int_at_least(name: str, value: object, minimum: int, *, optional: bool = False) -> int | None:
    """``value`` if it is an int ≥ ``minimum`` (or None when ``optional``), else ``ValueError``."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{' or None' if optional else ''}, got {value!r}")
    return value


def finite_number(
    name: str, value: object, *, low: float = 0.0, low_open: bool = False, high: float = math.inf
) -> float:
    """``value`` if it is a finite int or float in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = (f"> {low}" if low_open else f">= {low}") + (f" and <= {high}" if high != math.inf else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value  # type: ignore[return-value]


def one_of(name: str, value: object, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options``, else ``ValueError`` listing them."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value  # type: ignore[return-value]
