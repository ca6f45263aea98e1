"""Checking a scorer's keyword options, so a typo is a one-line ConfigError, not a TypeError."""

from __future__ import annotations

import inspect
import numbers
from typing import Any, Mapping

from ..errors import ConfigError


def reject_unknown(method: str, unknown: Mapping[str, Any], cls: type) -> None:
    """Raise :class:`ConfigError` naming the unknown options and the valid ones of ``cls``."""
    if not unknown:
        return
    params = inspect.signature(cls).parameters.values()  # the class's: __init__'s without self
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    valid = [p.name for p in params if p.name != "self" and p.kind in kinds]
    raise ConfigError(f"{method}: unknown option(s) {', '.join(sorted(unknown))}; valid options: {', '.join(valid) or 'none'}")


def check(method: str, name: str, value: Any, ok: bool, expected: str) -> None:
    """Raise :class:`ConfigError` unless ``ok``: '<method>: <name> must be <expected>, got <value>'."""
    if not ok:
        raise ConfigError(f"{method}: {name} must be {expected}, got {value!r}")


def is_int(value: Any) -> bool:
    """An integer (numpy's too), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number (numpy's too), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
