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
