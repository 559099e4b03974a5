"""Loading untrusted YAML or JSON text into a tree of plain values, within limits.

The input's size is limited, nesting and YAML alias expansion are bounded, duplicate and merge
keys are refused, and anything malformed is a SpecError, never another exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

from modelport.control.spec.problems import Problem, SpecError, describe_value, join_path, shorten

MAX_INPUT_BYTES = 1 << 20
MAX_DEPTH = 64  # Kubernetes objects nest ~15 levels; this only stops hostile input
MAX_VALUES = 200_000  # values after YAML aliases are expanded ("billion laughs")
MAX_CHARS = 4 << 20  # characters in strings after aliases are expanded

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STRING_TAGS = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")


class _Loader(_BaseLoader):  # type: ignore[misc]
    """Safe YAML loading with Kubernetes' reading of a few corner cases."""

    # Timestamps stay strings, as sigs.k8s.io/yaml turns them into JSON strings; so does a
    # plain "=", which PyYAML would tag as a YAML 1.1 "value" it cannot construct.
    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _STRING_TAGS]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def flatten_mapping(self, node: Any) -> None:
        # Merge keys copy whole mappings at construction time, so nested merges grow
        # exponentially before any budget could be checked; plain aliases share objects.
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    None, None, "YAML merge keys (<<) are not supported", key_node.start_mark
                )

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # kubectl rejects duplicate keys rather than silently keeping the last one.
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {shorten(key_node.value)!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_text(text: str | bytes) -> list[Any]:
    if isinstance(text, str):
        if len(text) > MAX_INPUT_BYTES:
            raise _too_large()
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise SpecError(
                [Problem("input", f"is not valid Unicode text ({exc.reason} at {exc.start})")]
            ) from None
        if size > MAX_INPUT_BYTES:
            raise _too_large()
    else:
        if len(text) > MAX_INPUT_BYTES:
            raise _too_large()
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpecError(
                [Problem("input", f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]
            ) from None
    stripped = text.lstrip()
    json_error: Problem | None = None
    if stripped.startswith(("{", "[")):
        try:
            return [json.loads(text, object_pairs_hook=_json_object)]
        except json.JSONDecodeError as exc:
            # A YAML flow mapping also starts with "{"; if YAML cannot read it either, the
            # JSON error is the one that helps.
            json_error = Problem(f"line {exc.lineno}, column {exc.colno}", exc.msg)
        except _DuplicateKey as exc:
            raise SpecError([Problem("input", f"duplicate key {shorten(exc.key)!r}")]) from None
        except (RecursionError, ValueError) as exc:
            raise SpecError([Problem("input", _reason(exc))]) from None
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        if json_error is not None:
            raise SpecError([json_error]) from None
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "input"
        message = exc.problem or "invalid YAML"
        if exc.context:
            message = f"{message} ({exc.context})"
        raise SpecError([Problem(where, message)]) from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        # ValueError: e.g. an integer with more digits than Python converts (int_max_str_digits).
        raise SpecError(
            [Problem(json_error.path if json_error else "input", _reason(exc))]
        ) from None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _too_large() -> SpecError:
    return SpecError([Problem("input", f"is larger than the limit of {MAX_INPUT_BYTES} bytes")])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"is nested too deeply (more than {MAX_DEPTH} levels)"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "holds an integer with too many digits"
    return shorten(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 200)


class InputBudget:
    def __init__(self) -> None:
        self.values = MAX_VALUES
        self.chars = MAX_CHARS


class BadInput(Exception):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message


def plain_data(value: Any, parts: tuple[str, ...], depth: int, budget: InputBudget) -> Any:
    """A fresh tree of plain JSON values; aliases expanded within budget, cycles refused."""
    if depth > MAX_DEPTH:
        where = shorten(_path(parts), 100) or "input"
        raise BadInput(where, f"is nested too deeply (more than {MAX_DEPTH} levels)")
    budget.values -= 1
    if budget.values < 0:
        raise BadInput("input", f"has more than {MAX_VALUES} values once YAML aliases are expanded")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadInput(
                    _path((*parts, str(key))),
                    f"keys must be strings, got {describe_value(key)} (quote it)",
                )
            _spend(budget, key)
            out[key] = plain_data(item, (*parts, key), depth + 1, budget)
        return out
    if isinstance(value, list):
        return [
            plain_data(item, (*parts, f"[{i}]"), depth + 1, budget) for i, item in enumerate(value)
        ]
    if isinstance(value, str):
        _spend(budget, value)
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise BadInput(
        _path(parts) or "input",
        f"holds a {type(value).__name__}; "
        "only strings, numbers, booleans, lists and mappings are allowed",
    )


def _spend(budget: InputBudget, text: str) -> None:
    budget.chars -= len(text)
    if budget.chars < 0:
        raise BadInput(
            "input", f"has more than {MAX_CHARS} characters once YAML aliases are expanded"
        )


def _path(parts: Iterable[str]) -> str:
    out = ""
    for part in parts:
        out = out + part if part.startswith("[") else join_path(out, part)
    return out
