"""Reading scenario YAML: line numbers, the error naming file, line and field, typed field readers, and the
values the fields may take (user types, statuses, data groups, customer classes, PG&E's cities).

Shared by the scenario parser (``scenario.parse``) and the population block's parser
(``scenario.population``), so neither reaches into the other's helpers. Every reader takes the
:class:`Context` (the file), the mapping, the key and ``where`` (the field path of the mapping).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import yaml

from mock_custodian.clock import PACIFIC
from mock_custodian.vocabulary import DATA_GROUPS, RegistrationStatus

USER_TYPES = ("standard", "self_access", "eef", "cca")
# What a scenario may declare (discarded is only reached by the clock).
REGISTRATION_STATUSES = tuple(status for status in RegistrationStatus if status != RegistrationStatus.DISCARDED)
CUSTOMER_CLASSES = ("RES", "AGR", "COM/IND", "OTHER")
HISTORY_MONTHS = (24, 36, 48)

# Cities in PG&E's service territory: (city, ZIP prefix, area code, California climate zone).
PGE_CITIES = (
    ("San Francisco", "941", "415", 3),
    ("Oakland", "946", "510", 3),
    ("Berkeley", "947", "510", 3),
    ("San Jose", "951", "408", 4),
    ("Sacramento", "958", "916", 12),
    ("Fresno", "937", "559", 13),
    ("Bakersfield", "933", "661", 13),
    ("Santa Rosa", "954", "707", 2),
    ("Chico", "959", "530", 11),
    ("Stockton", "952", "209", 12),
    ("Salinas", "939", "831", 3),
    ("San Luis Obispo", "934", "805", 5),
    ("Eureka", "955", "707", 1),
)


class ScenarioError(ValueError):
    """A scenario problem, naming the file, the line and the field."""

    def __init__(self, path: str, line: int | None, field_path: str, message: str) -> None:
        self.path, self.line, self.field_path, self.message = path, line, field_path, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field_path}: {message}" if field_path else f"{where}: {message}")


class YamlMap(dict):
    """A YAML mapping that remembers the line of each key."""

    lines: dict[str, int]
    line: int


class YamlSeq(list):
    line: int


class LineLoader(yaml.SafeLoader):
    pass


def _construct_map(loader: LineLoader, node: yaml.MappingNode) -> YamlMap:
    result = YamlMap()
    result.lines = {}
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _construct_seq(loader: LineLoader, node: yaml.SequenceNode) -> YamlSeq:
    result = YamlSeq(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


@dataclass
class Context:
    path: str

    def fail(self, node: Any, key: str | None, field_path: str, message: str) -> ScenarioError:
        line = None
        if isinstance(node, YamlMap):
            line = node.lines.get(key, node.line) if key is not None else node.line
        elif isinstance(node, YamlSeq):
            line = node.line
        return ScenarioError(self.path, line, field_path, message)


def required(ctx: Context, node: YamlMap, key: str, where: str, kind: type | tuple = str) -> Any:
    if key not in node or node[key] is None or node[key] == "":
        raise ctx.fail(node, None, f"{where}.{key}", "is required")
    return typed(ctx, node, key, where, kind)


def optional(ctx: Context, node: YamlMap, key: str, where: str, kind: type | tuple = str, default: Any = None) -> Any:
    if key not in node or node[key] is None:
        return default
    return typed(ctx, node, key, where, kind)


def typed(ctx: Context, node: YamlMap, key: str, where: str, kind: type | tuple) -> Any:
    value = node[key]
    if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ctx.fail(node, key, f"{where}.{key}", f"expected {names}, got {type(value).__name__}")
    return value


def choice(ctx: Context, node: YamlMap, key: str, where: str, choices: tuple, default: Any = None) -> Any:
    value = optional(ctx, node, key, where, str if isinstance(choices[0], str) else int, default)
    if value is None:
        raise ctx.fail(node, None, f"{where}.{key}", "is required")
    if value not in choices:
        raise ctx.fail(node, key, f"{where}.{key}", f"{value!r} is not one of {', '.join(map(str, choices))}")
    return value


def https_url(ctx: Context, node: YamlMap, key: str, where: str) -> str | None:
    value = optional(ctx, node, key, where, str)
    if value is None:
        return None
    if not re.match(r"^(https://[^\s/?#]+|\{api_base_url\})[^\s]*$", value):
        raise ctx.fail(node, key, f"{where}.{key}", f"{value!r} is not a well-formed https URL")
    return value


def instant(ctx: Context, node: YamlMap, key: str, where: str, default: Any = None) -> float | str | None:
    """An absolute instant/date (stored as epoch) or a relative offset like ``-90d`` (kept as text)."""
    if key not in node or node[key] is None:
        return default
    value = node[key]
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=PACIFIC).timestamp()
    if isinstance(value, str):
        if re.fullmatch(r"[+-]\d+[dhm]", value.strip()):
            return value.strip()
        if value.strip().lower() == "indefinite":
            return None
        try:
            text = value.strip().replace("Z", "+00:00")
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.timestamp()
    raise ctx.fail(
        node, key, f"{where}.{key}",
        f"{value!r} is not a date (YYYY-MM-DD, local), an instant with zone (2026-03-01T00:00Z) "
        "or an offset like -90d",
    )


def data_groups(ctx: Context, node: YamlMap, key: str, where: str, default: list[str] | None = None) -> list[str]:
    value = node.get(key, default)
    if value is None:
        raise ctx.fail(node, None, f"{where}.{key}", "is required")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ctx.fail(node, key, f"{where}.{key}", "expected a list of data groups")
    for group in value:
        if group not in DATA_GROUPS:
            raise ctx.fail(node, key, f"{where}.{key}", f"{group!r} is not one of {', '.join(DATA_GROUPS)}")
    return list(value)


def contact(ctx: Context, node: YamlMap, key: str, where: str) -> dict:
    value = node.get(key)
    if value is None:
        return {}
    if not isinstance(value, YamlMap):
        raise ctx.fail(node, key, f"{where}.{key}", "expected a mapping with name, email, phone")
    return {k: str(value.get(k, "")) for k in ("name", "email", "phone")}


def sequence(ctx: Context, node: YamlMap, key: str, where: str, required: bool = False) -> list:
    value = node.get(key)
    if value is None:
        if required:
            raise ctx.fail(node, None, f"{where}.{key}", "is required")
        return []
    if not isinstance(value, list):
        raise ctx.fail(node, key, f"{where}.{key}", "expected a list")
    return value


def mapping(ctx: Context, value: Any, where: str, parent: Any) -> YamlMap:
    if not isinstance(value, YamlMap):
        raise ctx.fail(parent, None, where, "expected a mapping")
    return value


def check_keys(ctx: Context, node: YamlMap, where: str, allowed: set[str]) -> None:
    for key in node:
        if key not in allowed:
            raise ctx.fail(
                node, key, f"{where}.{key}", f"unknown field (expected one of {', '.join(sorted(allowed))})"
            )
