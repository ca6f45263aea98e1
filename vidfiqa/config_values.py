"""The one check that a configuration value has its setting's type.

Presets (``configs/*.toml``, ``--config FILE``), stream files (``[stream]`` and ``[pipeline]``)
and keyword arguments (``vidfiqa.run(top_k=3)``) all go through :func:`coerce`, so the same
value is accepted or refused the same way wherever it is written.  The rules are strict, because
TOML already has typed values and a quoted ``"yes"`` or ``"3"`` is far more often a mistake than
a wish:

* ``bool``: ``true`` or ``false`` only, never a string or a number;
* ``int``: an integer, not a bool; a float only when it is integral (``3.0`` -> ``3``);
* ``float``: an integer or a float, not a bool, and finite (NaN and infinities are refused: no
  setting means them, and they would reach manifests as values strict JSON readers refuse); the
  result is a float;
* ``str``: a string;
* ``X | None``: as ``X``, or None (only from Python: TOML has no null).

Numbers from NumPy count as numbers (``numbers.Integral`` / ``numbers.Real``).  A refused value is
a one-line :class:`~vidfiqa.errors.ConfigError` naming the file (when there is one) and the key.
This module imports nothing of vidfiqa but its errors.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from .errors import ConfigError

_WANTED = {"bool": "a bool (true or false)", "int": "an int", "float": "a finite number", "str": "a string"}


def coerce(value: Any, kind: str, key: str, where: str | None = None) -> Any:
    """``value`` as the type ``kind`` names (a dataclass field's annotation, e.g. ``"int"`` or
    ``"float | None"``); ``where`` (a file, a table) prefixes the error message."""
    parts = [part.strip() for part in kind.split("|")]
    optional = "None" in parts
    base = [part for part in parts if part != "None"]
    if len(base) != 1 or base[0] not in _WANTED:
        raise TypeError(f"setting {key}: unsupported type {kind!r}")  # a programming error, not the user's
    base_kind = base[0]
    if value is None and optional:
        return None
    converted = _convert(value, base_kind)
    if converted is _REFUSED:
        wanted = _WANTED[base_kind] + (" or None" if optional else "")
        place = f"{where}: {key}" if where else f"setting {key}"
        raise ConfigError(f"{place}: expected {wanted}, got {value!r}")
    return converted


_REFUSED = object()


def _convert(value: Any, kind: str) -> Any:
    if kind == "bool":
        return value if isinstance(value, bool) else _REFUSED
    if kind == "str":
        return value if isinstance(value, str) else _REFUSED
    if isinstance(value, bool) or not isinstance(value, Real):
        return _REFUSED  # bool is an int subclass in Python, but true is not a number here
    if kind == "float":
        return float(value) if math.isfinite(value) else _REFUSED
    if isinstance(value, Integral):
        return int(value)
    number = float(value)
    return int(number) if number.is_integer() else _REFUSED
