"""GJSON conditions as KServe writes them (test/e2e/graph, cmd/router/main_test.go, the
InferenceGraph docs), read as Go's gjson reads them: a path "matches" when it exists.

These are the conditions that decided the library: gjson-py (PyPI ``gjson``) refuses
``[@this].#(decision_picker==ERROR)`` with a parse error (it wants the value quoted), while
pygjson (gjson.rs) answers as the Go library the router uses."""

from __future__ import annotations

import pytest

from modelport.graph.conditions import matches, valid_json

ERROR_PICKER = b'{"decision_picker": "ERROR", "key1": {"name": "abc"}}'
SUCCESS_PICKER = b'{"decision_picker": "SUCCESS", "key1": {"name": "abc"}}'


@pytest.mark.parametrize(
    ("body", "condition", "expected"),
    [
        (ERROR_PICKER, "[@this].#(decision_picker==ERROR)", True),
        (SUCCESS_PICKER, "[@this].#(decision_picker==ERROR)", False),
        (SUCCESS_PICKER, "[@this].#(decision_picker==SUCCESS)", True),
        (b'{"source": "client"}', "[@this].#(source==client)", True),
        (b'{"source": "server"}', "[@this].#(source==client)", False),
        (b'{"instances": [{"intval": 5}, {"intval": 11}]}', "instances.#(intval>10)", True),
        (b'{"instances": [{"intval": 5}, {"intval": 10}]}', "instances.#(intval>10)", False),
        (b'{"predictions": [{"class": "dog"}]}', 'predictions.#(class=="dog")', True),
        (b'{"predictions": [{"class": "cat"}]}', 'predictions.#(class=="dog")', False),
        (b'{"predictions": [1, 0]}', "predictions", True),
        (b'{"outputs": []}', "predictions", False),
        (SUCCESS_PICKER, "key1.name", True),
        # Go's Exists() is true for a JSON null that is there.
        (b'{"a": null}', "a", True),
        # An empty condition exists nowhere (gjson.Get(json, "").Exists() is false).
        (SUCCESS_PICKER, "", False),
    ],
)
def test_kserve_conditions(body: bytes, condition: str, expected: bool) -> None:
    assert matches(body, condition) is expected


def test_a_body_that_is_not_json_matches_nothing() -> None:
    assert not valid_json(b"not json")
    assert not matches(b'{"a":', "a")
    assert not matches(b"", "a")


@pytest.mark.parametrize("condition", ["[[[", "#(", "@nosuchmodifier", "..", "a.#(b==", "@pretty"])
def test_malformed_conditions_never_raise(condition: str) -> None:
    assert matches(b'{"a": {"b": 1}}', condition) in (True, False)


def test_deep_nesting_is_refused_before_gjson_reads_it() -> None:
    # gjson.rs overflows its stack on documents nested this deep; orjson refuses them first.
    deep = b"[" * 100_000 + b"]" * 100_000
    assert not valid_json(deep)
    assert not matches(deep, "0.0.0.0.0")
    # At orjson's limit it is read, and answers.
    limit = b"[" * 1000 + b"]" * 1000
    assert matches(limit, "0.0.0")
