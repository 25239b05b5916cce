"""Typed config from plain dicts (YAML manifests, CLI flags), checked before any work starts.

Every stage keeps its options in a dataclass; `from_dict` rejects unknown keys, wrong types and
bad values with an error that names the field and says how to fix it (img2dataset's
arguments_validator, nanoGPT's configurator).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import re
import types
import typing
from collections.abc import Callable
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
        raise ConfigError(f"{prefix}{unknown[0]}: unknown option; allowed options are: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if not _type_ok(value, hints[name]):
            raise ConfigError(
                f"{prefix}{name}: expected {getattr(hints[name], '__name__', hints[name])}, "
                f"got {type(value).__name__} {value!r}"
            )
    missing = [
        n
        for n, f in fields.items()
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


# --- Flags from a Config dataclass -----------------------------------------------------------------
# Every stage (and the trainer) takes its CLI flags from its Config: one flag per field, its type and
# default from the annotation, its help from the field's trailing `# comment` (or metadata["help"]).
# A field's metadata may rename the flag ("flag"), add an inverted switch ("negate": "keep_x" makes
# `--keep_x` set the field False), give the CLI its own default ("flag_default") or no flag ("flag": False). Lists take "a,b,c" or "a b c"; dicts take "key=value" pairs.


def _field_comments(cls: type) -> dict[str, str]:
    """Trailing `# comment` of each field line in the class body (the help text a reader sees)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    for line in lines:
        match = re.match(r"^\s+([A-Za-z_]\w*)\s*:[^#]*#\s*(.+)$", line)
        if match and "(" not in match.group(1):
            out.setdefault(match.group(1), match.group(2).strip())
    return out


def _scalar(annotation: Any) -> Any:
    """The scalar type behind `X | None`, or the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        lists = [a for a in args if a is list or typing.get_origin(a) is list]
        return args[0] if len(args) == 1 else lists[0] if lists else str
    return annotation


def parse_bool(text: str) -> bool:
    """`--flag`, `--flag true|false|1|0|yes|no|on|off` (objaverse and laion took values before)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_value(kind: Any, optional: bool = False) -> Callable[[str], Any]:
    base: Callable[[str], Any] = int if kind is int else float if kind is float else str
    if not optional:
        return base

    def parse(text: str) -> Any:
        return None if text.strip().lower() in ("none", "null") else base(text)

    return parse


def _split_items(kind: Any) -> Callable[[str], list]:
    def parse(text: str) -> list:
        return [kind(x) for x in text.split(",") if x.strip()]

    return parse


def _key_values(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{item!r}: expected key=value")
        out[key] = value
    return out


class _Flatten(argparse.Action):
    """nargs="+" of comma-separated items -> one flat list; a repeated flag extends it
    (`--strides 10,20 30`, `--expert depth,edges --expert normals`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(namespace, self.dest, None) or []
        setattr(namespace, self.dest, [*given, *(x for part in values for x in part)])


class _KeyValues(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, _key_values(list(values)))


def add_config_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> list[str]:
    """Add one flag per field of dataclass `cls` to `parser`; returns the field names added.

    Fields whose value is structured (a list of mappings, a free-form dict without str values) have no
    flag: they come from a manifest or a stage's own file flag. Required fields become required flags.
    """
    hints = typing.get_type_hints(cls)
    helps = _field_comments(cls)
    added = []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        meta = dict(f.metadata)
        if meta.get("flag") is False:
            continue
        flag = "--" + meta.get("flag", f.name)
        kind = _scalar(hints[f.name])
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        factory: Any = f.default_factory
        default = None if required else (f.default if f.default is not dataclasses.MISSING else factory())
        if "flag_default" in meta:  # the CLI's default differs (e.g. the embedded sample)
            required, default = False, meta["flag_default"]
        help_ = meta.get("help") or helps.get(f.name, "")
        shown = f"default: {default}" if not required and default not in (None, "", [], {}) else ""
        help_ = "; ".join(p for p in (help_, shown) if p)
        origin = typing.get_origin(kind) or kind
        common: dict[str, Any] = {"dest": f.name, "help": help_.replace("%", "%%")}
        if "choices" in meta:
            common["choices"] = meta["choices"]
        if kind is bool:
            # Both spellings work; help shows the one that changes the default.
            on_help, off_help = (
                (argparse.SUPPRESS, common.pop("help")) if default else (common.pop("help"), argparse.SUPPRESS)
            )
            parser.add_argument(
                flag, nargs="?", const=True, type=parse_bool, default=default, help=on_help, metavar="BOOL", **common
            )
            parser.add_argument("--no_" + flag[2:], action="store_false", help=off_help, **common)
            if meta.get("negate"):
                parser.add_argument(
                    "--" + meta["negate"], action="store_false", help=f"sets {f.name} false", dest=f.name
                )
        elif origin in (list, tuple):
            args = typing.get_args(kind)
            item = _parse_value(args[0]) if args else str
            if args and args[0] not in (int, float, str):
                continue  # list of mappings: from a manifest, not a flag
            parser.add_argument(
                flag,
                type=_split_items(item),
                nargs="+",
                action=_Flatten,
                default=argparse.SUPPRESS,
                required=required,
                metavar="A,B",
                **common,
            )
        elif origin is dict:
            parser.add_argument(
                flag, nargs="*", action=_KeyValues, default=default, metavar="KEY=VALUE", required=required, **common
            )
        else:
            optional = kind is not hints[f.name]
            parser.add_argument(flag, type=_parse_value(kind, optional), default=default, required=required, **common)
        added.append(f.name)
    return added


def config_from_flags(cls: type[T], args: argparse.Namespace, where: str, **extra: Any) -> T:
    """The Config `cls` from the parsed flags of `add_config_flags` (plus `extra` fields), checked."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in vars(args).items() if k in names}  # list flags not given are absent
    values.update(extra)
    return from_dict(cls, values, where=where)


def config_parser(prog: str, description: str, cls: type, skip: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """An ArgumentParser whose flags are the fields of `cls` (help from the field comments)."""
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    add_config_flags(parser, cls, skip)
    return parser


class _RaisingParser(argparse.ArgumentParser):
    """argparse whose mistakes are ConfigErrors naming the field (for configs merged from several places)."""

    def error(self, message: str) -> typing.NoReturn:
        bad = re.match(r"argument --(\w+)(?:/--\w+)?: invalid (\w+) value: '(.*)'", message)
        if bad:
            name, kind, value = bad.groups()
            kind = {"parse_bool": "bool", "parse": "a number or none"}.get(kind, kind)
            raise ConfigError(f"{name}: expected {kind}, got {value!r}")
        raise ConfigError(message)


def _underscored(arg: str) -> str:
    """`--max-steps=3` -> `--max_steps=3` (YAML keys and fields use underscores)."""
    if not arg.startswith("--"):
        return arg
    key, eq, value = arg[2:].partition("=")
    return "--" + key.replace("-", "_") + eq + value


def flag_overrides(cls: type, argv: list[str], prog: str = "") -> dict[str, Any]:
    """Only the fields that `argv` sets (`--key=value` or `--key value`), typed by the Config's flags,
    to lay over a YAML file's values (the trainer: a config file, then flags). Unknown flags are a
    ConfigError naming the closest field."""
    parser = _RaisingParser(prog=prog, allow_abbrev=False, add_help=False)
    names = add_config_flags(parser, cls)
    for action in parser._actions:  # absent unless given (set_defaults would fill them in)
        if action.dest in names:
            action.default = argparse.SUPPRESS
    given, unknown = parser.parse_known_args([_underscored(a) for a in argv])
    if unknown:
        name = unknown[0].split("=", 1)[0].lstrip("-")
        fields = [f.name for f in dataclasses.fields(cls)]
        close = difflib.get_close_matches(name, fields, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; allowed options are: {', '.join(fields)}"
        raise ConfigError(f"{name}: unknown option{hint}")
    return vars(given)
