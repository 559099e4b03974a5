"""How a document is wrong: a :class:`Problem` is one message at a field path, a
:class:`SpecError` holds them all; the helpers write paths and values into those messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelport.errors import ModelportError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document, at a field path like ``spec.predictor.minReplicas``."""

    path: str
    message: str


class SpecError(ModelportError):
    """A document is not a valid spec; ``problems`` holds every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(
            "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in self.problems)
        )


def join_path(path: str, key: str) -> str:
    key = shorten(key, 80)
    return f"{path}.{key}" if path else key


def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"number {shorten(str(value), 30)}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {shorten(value, 40)!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
