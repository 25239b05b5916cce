"""Typed config from plain dicts (YAML manifests, CLI flags), checked before any work starts.

Every stage keeps its options in a dataclass; `from_dict` rejects unknown keys, wrong types and
bad values with an error that names the field and says how to fix it (img2dataset's
arguments_validator, nanoGPT's configurator).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """Bad configuration: the message names the field and the fix."""


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass `cls` from `data`, naming `where.field` in every error."""
    data = dict(data or {})
    prefix = f"{where}." if where else ""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown option; allowed options are: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if not _type_ok(value, hints[name]):
            raise ConfigError(
                f"{prefix}{name}: expected {getattr(hints[name], '__name__', hints[name])}, "
                f"got {type(value).__name__} {value!r}"
            )
    missing = [
        n for n, f in fields.items()
        if n not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{prefix}{missing[0]}: required option is missing; add `{missing[0]}: ...`")
    obj = cls(**data)
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(f"{prefix}{exc}") from None
    return obj


def require(condition: bool, field: str, message: str) -> None:
    """For `validate()` methods: raise ConfigError('field: message') unless condition holds."""
    if not condition:
        raise ConfigError(f"{field}: {message}")
