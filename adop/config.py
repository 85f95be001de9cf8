"""The one config mechanism: frozen dataclasses that validate themselves and round-trip through JSON exactly.

Every config in adop (ingest, SfM, cleanup, rasterizer, networks, training, rendering, the pipeline options) is a
frozen dataclass deriving from ``Config``, with a docstring under every field. Fields are primitives, ``Path``s,
``Literal``s, tuples, optional values and nested configs, so that:

- construction checks every ``Literal`` field and then the class's own ``validate()``; a bad value raises one
  ``InputError`` that names the field (``SfmConfig(mapper="typo")`` fails, it does not silently run another mapper);
- ``to_dict()`` / ``from_dict()`` are exact inverses, and ``from_dict`` rejects unknown fields and values of the
  wrong kind instead of ignoring them;
- ``config_hash()`` is stable across processes and machines (canonical JSON), so it can go into cache keys.

Defaults are declared once, on the field; command lines and the pipeline options read them from the class.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from adop.errors import InputError

C = TypeVar("C", bound="Config")


class Config:
    """Base of every adop config (use with ``@dataclass(frozen=True)``)."""

    def __post_init__(self) -> None:
        for name, hint in _field_hints(type(self)).items():
            choices = _literal_choices(hint)
            value = getattr(self, name)
            if choices is not None and value not in choices and not (value is None and _is_optional(hint)):
                raise InputError(
                    f"{type(self).__name__}.{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
                )
        self.validate()

    def validate(self) -> None:
        """Check values that types cannot express (ranges, combinations); raise ``InputError`` naming the field."""

    def replace(self: C, **changes: Any) -> C:
        """A copy with fields replaced (validated like a new config)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (paths as strings, tuples as lists, nested configs as dicts)."""
        return to_plain(self)

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], where: str | None = None) -> C:
        """Inverse of ``to_dict``; missing fields take their defaults, unknown fields are an error.

        Raises:
            InputError: an unknown field, a value of the wrong kind, or a value ``validate`` rejects.
        """
        return _from_plain(cls, data, where or cls.__name__)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), the form that is saved and hashed."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        """Parse ``to_json`` output.

        Raises:
            InputError: not JSON, or not a valid config.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"{cls.__name__}: not valid JSON ({error})") from None
        return cls.from_dict(data)

    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON: the part of a cache key that this config contributes."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def require(condition: bool, message: str) -> None:
    """Raise ``InputError(message)`` unless ``condition``: the one-line form of a ``validate`` check."""
    if not condition:
        raise InputError(message)


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _is_optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType) and type(None) in typing.get_args(hint)


def _literal_choices(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) in (Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = inner[0] if len(inner) == 1 else hint
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else None


def to_plain(value: Any) -> Any:
    """JSON-compatible form of a config, a path, a tuple or list of them (dicts for dataclasses, strings for paths)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [to_plain(v) for v in value]
    return value


def _from_plain(cls: type, data: Any, where: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = _field_hints(cls)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {unknown} for {cls.__name__}")
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}: {error}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _from_plain(hint, value, where)
    if hint is Path:
        if not isinstance(value, (str, Path)):
            raise InputError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {value!r}")
        inner = typing.get_args(hint)
        if not (len(inner) == 2 and inner[1] is Ellipsis) and len(inner) != len(value):
            raise InputError(f"{where}: expected {len(inner)} values, got {len(value)}")
        return tuple(_convert(inner[0] if len(inner) == 2 and inner[1] is Ellipsis else inner[i], v, where)
                     for i, v in enumerate(value))
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise InputError(f"{where}: {value!r} is not one of {typing.get_args(hint)}")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, bool, str) and not isinstance(value, hint):
        raise InputError(f"{where}: expected {hint.__name__}, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise InputError(f"{where}: expected int, got {value!r}")
    return value
