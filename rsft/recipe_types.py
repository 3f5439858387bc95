"""A recipe's plain mapping into the typed, frozen sections of rsft/config.py: an unknown key fails with the closest
match and the valid keys, a value is coerced to its declared type (an integer in int32, a finite float, true/false,
one of a Literal's values) or fails naming its key path.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Literal

from rsft.errors import UserError


def coerce(value, tp, where: str):
    """`value` as the declared type `tp` (Optional, Literal, tuple, bool, int, float, str); `where` names it."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return coerce(value, inner, where)
    if origin is Literal:
        if value in args:
            return value
        raise UserError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
    if origin is tuple:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        return tuple(coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise UserError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        return _bounded(_to_int(value, where), where)
    if tp is float:
        f = _to_float(value, where)
        if not math.isfinite(f):
            raise UserError(f"{where}: expected a finite number, got {value!r}")
        return f
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"{where}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp}")  # a bug in rsft/config.py, not in the recipe


# Every integer here counts steps, rows, tokens, ranks or is a seed; beyond int32 none is meaningful, and such
# values overflow numpy's arithmetic later (max_length: 1e30) instead of failing here.
_INT_LIMIT = 2**31 - 1


def _to_int(value, where: str) -> int:
    if isinstance(value, bool):
        raise UserError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise UserError(f"{where}: expected an integer, got {value!r}")


def _bounded(n: int, where: str) -> int:
    if abs(n) > _INT_LIMIT:
        shown = f"{n:.3g}" if n.bit_length() < 1000 else "a number of over 300 digits"
        raise UserError(f"{where}: {shown} is out of range (at most {_INT_LIMIT:,})")
    return n


def _to_float(value, where: str) -> float:
    if isinstance(value, bool):
        raise UserError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise UserError(f"{where}: a number of over 300 digits is out of range") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise UserError(f"{where}: expected a number, got {value!r}")


def build(cls, raw: dict, where: str, source: str):
    """The dataclass `cls` from the mapping `raw` (at key path `where` of the file `source`), its nested sections
    built in turn: a key it does not declare fails with the closest match and the valid keys, a value is coerced to
    the declared type."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: '{where}' must be a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    kwargs = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"did you mean '{(where + '.') if where else ''}{close[0]}'? " if close else ""
            raise UserError(f"{source}: unknown key '{path}'; {hint}valid keys: {', '.join(names)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = build(tp, value if value is not None else {}, path, source)
        else:
            kwargs[key] = coerce(value, tp, f"{source}: {path}")
    return cls(**kwargs)
