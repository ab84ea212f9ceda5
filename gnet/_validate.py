"""Argument checks shared by every gnet module: a ValueError that says what was expected and what was given."""

from __future__ import annotations


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an int ≥ 1, else ``ValueError``. ``True`` is rejected: a bool is never a count."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value
