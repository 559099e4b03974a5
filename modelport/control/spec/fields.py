"""Reading typed fields out of decoded documents: the reader collects every problem with its
field path, and every field modelport does not act on; also the metadata and name rules the
kinds share."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any

from modelport.control.spec.constants import (
    BLOCKED_ENV,
    BLOCKED_ENV_PREFIX,
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    INT32,
)
from modelport.control.spec.problems import Problem, describe_value, join_path, shorten


class FieldReader:
    """Reads typed fields from plain dicts, collecting problems and fields not acted on."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.ignored: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def ignore(self, path: str) -> None:
        if path not in self.ignored:
            self.ignored.append(path)

    def only(self, mapping: dict[str, Any], path: str, acted: Iterable[str]) -> None:
        """Report every key of ``mapping`` outside ``acted`` as not acted on."""
        known = set(acted)
        for key in mapping:
            if key not in known:
                self.ignore(join_path(path, key))

    def mapping(self, value: Any, path: str, *, required: bool = False) -> dict[str, Any] | None:
        if value is None:
            if required:
                self.problem(path, "is required")
            return None
        if not isinstance(value, dict):
            self.problem(path, f"must be a mapping, got {describe_value(value)}")
            return None
        return value

    def string(
        self, mapping: dict[str, Any], key: str, path: str, *, required: bool = False
    ) -> str | None:
        where = join_path(path, key)
        value = mapping.get(key)
        if value is None:
            if required:
                self.problem(where, "is required")
            return None
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, (bool, int, float)) else ""
            self.problem(where, f"must be a string, got {describe_value(value)}{hint}")
            return None
        if "\x00" in value:
            self.problem(where, "must not contain NUL characters")
            return None
        if required and not value:
            self.problem(where, "must not be empty")
            return None
        return value

    def choice(
        self, mapping: dict[str, Any], key: str, path: str, choices: Sequence[str]
    ) -> str | None:
        value = self.string(mapping, key, path)
        if value is not None and value not in choices:
            self.problem(
                join_path(path, key), f"must be one of {', '.join(choices)}, got {shorten(value)!r}"
            )
            return None
        return value

    def integer(
        self, mapping: dict[str, Any], key: str, path: str, *, minimum: int, maximum: int
    ) -> int | None:
        where = join_path(path, key)
        value = mapping.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(where, f"must be an integer, got {describe_value(value)}")
            return None
        if not minimum <= value <= maximum:
            if maximum < INT32:
                self.problem(where, f"must be between {minimum} and {maximum}, got {value}")
            elif value < minimum:
                self.problem(where, f"must be at least {minimum}, got {value}")
            else:
                self.problem(where, f"must be at most {maximum}, got {shorten(str(value), 30)}")
            return None
        return value

    def boolean(self, mapping: dict[str, Any], key: str, path: str) -> bool | None:
        value = mapping.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.problem(
                join_path(path, key), f"must be true or false, got {describe_value(value)}"
            )
            return None
        return value

    def list(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, f"must be a list, got {describe_value(value)}")
            return []
        return value

    def strings(self, value: Any, path: str) -> builtins.list[str]:
        out: list[str] = []
        for i, item in enumerate(self.list(value, path)):
            if not isinstance(item, str):
                self.problem(f"{path}[{i}]", f"must be a string, got {describe_value(item)}")
            elif "\x00" in item:
                self.problem(f"{path}[{i}]", "must not contain NUL characters")
            else:
                out.append(item)
        return out

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        mapping = self.mapping(value, path)
        out: dict[str, str] = {}
        for key in mapping or {}:
            item = self.string(mapping or {}, key, path)
            if item is not None:
                out[key] = item
        return out

    def env(self, value: Any, path: str) -> dict[str, str]:
        """A container's ``env`` list as a dict; ``valueFrom`` entries are not acted on."""
        out: dict[str, str] = {}
        for i, item in enumerate(self.list(value, path)):
            where = f"{path}[{i}]"
            entry = self.mapping(item, where)
            if entry is None:
                continue
            name = self.string(entry, "name", where, required=True)
            self.only(entry, where, ("name", "value"))
            if name is None:
                continue
            if "=" in name:
                self.problem(f"{where}.name", "must not contain '='")
                continue
            if name in BLOCKED_ENV or name.startswith(BLOCKED_ENV_PREFIX):
                self.problem(
                    f"{where}.name", f"setting {shorten(name)} is not allowed for security reasons"
                )
                continue
            if "value" not in entry and "valueFrom" in entry:
                continue  # secrets and field references cannot be resolved here
            text = self.string(entry, "value", where)
            out[name] = text or ""
        return out


def read_metadata(
    reader: FieldReader, doc: dict[str, Any], default_namespace: str, *, namespaced: bool
) -> tuple[str | None, str | None, dict[str, str], dict[str, str]]:
    meta = reader.mapping(doc.get("metadata"), "metadata", required=True) or {}
    name = reader.string(meta, "name", "metadata", required=True)
    namespace: str | None = None
    if namespaced:
        namespace = reader.string(meta, "namespace", "metadata") or default_namespace
        if len(namespace) > 63 or not DNS1123_LABEL.fullmatch(namespace):
            reader.problem(
                "metadata.namespace",
                f"{shorten(namespace)!r} is not a valid namespace: at most 63 lower case "
                "alphanumeric characters or '-', starting and ending with an alphanumeric",
            )
    labels = reader.string_map(meta.get("labels"), "metadata.labels")
    annotations = reader.string_map(meta.get("annotations"), "metadata.annotations")
    reader.only(
        meta,
        "metadata",
        ("name", "namespace", "labels", "annotations")
        if namespaced
        else ("name", "labels", "annotations"),
    )
    return name, namespace, labels, annotations


def valid_runtime_name(name: str) -> bool:
    return len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name) is not None
