"""Label selectors and field selectors in their query-string forms
(k8s.io/apimachinery/pkg/labels and pkg/fields; "Labels and Selectors" in the Kubernetes docs):

- ``labelSelector``: requirements joined by commas, each ``key``, ``!key``, ``key=value``,
  ``key==value``, ``key!=value``, ``key in (a,b)`` or ``key notin (a,b)``;
- ``fieldSelector``: ``metadata.name`` and ``metadata.namespace`` with ``=``, ``==`` or
  ``!=``, the fields every custom resource supports (``kubectl wait`` and ``delete`` use
  ``metadata.name``).

A malformed selector is a :class:`SelectorError` (400 BadRequest).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]
FIELDS = ("metadata.name", "metadata.namespace")
_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SET = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^()]*)\)\s*$")


class SelectorError(ValueError):
    """The selector cannot be parsed; the message says which part."""


def _split(text: str) -> list[str]:
    """Requirements are separated by commas outside of ``( )``."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _check_key(key: str, text: str) -> str:
    if len(key) > 316 or not _KEY.match(key):
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r} in {text!r}")
    return key


def _check_value(value: str, text: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(
            f"unable to parse requirement: invalid label value {value!r} in {text!r}"
        )
    return value


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    found = _SET.match(text)
    if found:
        key = _check_key(found.group(1), text)
        values = {_check_value(v.strip(), text) for v in found.group(3).split(",")}
        if found.group(2) == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in text:
            key, _, value = text.partition(op)
            key = _check_key(key.strip(), text)
            value = _check_value(value.strip(), text)
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if text.startswith("!"):
        key = _check_key(text[1:].strip(), text)
        return lambda labels: key not in labels
    key = _check_key(text, text)
    return lambda labels: key in labels


def label_matcher(selector: str | None) -> Matcher:
    """Whether an object's ``metadata.labels`` satisfy every requirement."""
    requirements = [_requirement(part) for part in _split(selector or "")]

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


def field_matcher(selector: str | None) -> Matcher:
    """Whether an object's name and namespace satisfy every field requirement."""
    tests: list[Matcher] = []
    for part in _split(selector or ""):
        for op in ("!=", "==", "="):
            if op in part:
                field, _, value = part.partition(op)
                field, value = field.strip(), value.strip()
                break
        else:
            raise SelectorError(f"invalid selector: {part!r}; expected FIELD=VALUE")
        if field not in FIELDS:
            raise SelectorError(
                f'"{field}" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"'
            )
        attr = field.split(".", 1)[1]
        tests.append(_field_test(attr, value, negated=op == "!="))

    def matches(obj: dict[str, Any]) -> bool:
        return all(test(obj) for test in tests)

    return matches


def _field_test(attr: str, value: str, *, negated: bool) -> Matcher:
    def test(obj: dict[str, Any]) -> bool:
        equal: bool = (obj.get("metadata") or {}).get(attr, "") == value
        return equal != negated

    return test
