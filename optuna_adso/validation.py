"""Checks of user input that name the parameter and what was expected, before any compute."""

from __future__ import annotations

import math
from typing import Any


def as_number(value: Any, what: str) -> float:
    """``value`` as a finite float, or a ValueError that names ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return value


def as_positive(value: Any, what: str) -> float:
    """``value`` as a positive finite float, or a ValueError that names ``what``."""
    value = as_number(value, what)
    if value <= 0:
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    return value


def as_in_range(value: Any, what: str, low: float, high: float, *, include_high: bool = True,
                include_low: bool = True, unit: str = "") -> float:
    """``value`` as a float in [low, high] (ends open where asked), or a ValueError naming ``what``."""
    lo, hi = "[" if include_low else "(", "]" if include_high else ")"
    span = f"{lo}{low:g}, {high:g}{hi}" + (f" ({unit})" if unit else "")
    try:
        number = as_number(value, what)
    except ValueError:
        raise ValueError(f"{what} must be a number in {span}, got {value!r}") from None
    above = number >= low if include_low else number > low
    below = number <= high if include_high else number < high
    if not (above and below):
        raise ValueError(f"{what} must be a number in {span}, got {value!r}")
    return number


def as_int(value: Any, what: str, minimum: int | None = None) -> int:
    """``value`` as an int (not a bool) of at least ``minimum``, or a ValueError naming ``what``."""
    kinds = {None: "an int", 0: "a non-negative int", 1: "a positive int"}
    kind = kinds.get(minimum, f"an int >= {minimum}")
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        raise ValueError(f"{what} must be {kind}, got {value!r}")
    return int(value)


def as_optional_int(value: Any, what: str, minimum: int | None = None) -> int | None:
    """``None``, or ``value`` checked by :func:`as_int` (the message says None is allowed)."""
    if value is None:
        return None
    try:
        return as_int(value, what, minimum)
    except ValueError as exc:
        raise ValueError(str(exc).replace(" must be ", " must be None or ", 1)) from None


def as_bool(value: Any, what: str) -> bool:
    """``value`` if it is True or False, else a ValueError naming ``what``."""
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be True or False, got {value!r}")
    return value
