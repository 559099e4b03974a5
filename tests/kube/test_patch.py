"""Patches: JSON Merge Patch (RFC 7386's own examples), JSON Patch (RFC 6902's examples) and
the strategic merge patch kubectl sends, applied as a merge patch."""

from __future__ import annotations

from typing import Any

import pytest

from modelport.kube.patch import JSON_PATCH, MERGE, STRATEGIC, PatchError, apply_patch

# RFC 7386, Appendix A: (original, patch, result).
MERGE_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "result"), MERGE_CASES)
def test_merge_patch_rfc7386(original: dict, patch: Any, result: Any):
    before = repr(original)
    assert apply_patch(MERGE, original, patch) == result
    assert repr(original) == before


def test_strategic_merge_patch_is_a_merge_patch_without_directives():
    original = {"spec": {"a": 1, "b": {"c": 2}, "list": [1, 2]}}
    patch = {
        "spec": {
            "a": 3,
            "$setElementOrder/list": [{"name": "x"}],
            "$retainKeys": ["a"],
            "b": {"$patch": "delete"},
            "list": [{"$patch": "replace"}, 3],
        }
    }
    assert apply_patch(STRATEGIC, original, patch) == {"spec": {"a": 3, "list": [3]}}
    replaced = apply_patch(STRATEGIC, original, {"spec": {"$patch": "replace", "z": 1}})
    assert replaced == {"spec": {"z": 1}}


def test_json_patch_rfc6902_examples():
    doc = {"foo": "bar", "baz": [1, 2]}
    ops = [
        {"op": "add", "path": "/hello", "value": ["world"]},
        {"op": "add", "path": "/baz/1", "value": 9},
        {"op": "add", "path": "/baz/-", "value": 7},
        {"op": "remove", "path": "/foo"},
        {"op": "replace", "path": "/hello/0", "value": "there"},
        {"op": "copy", "from": "/baz/0", "path": "/first"},
        {"op": "move", "from": "/first", "path": "/moved"},
        {"op": "test", "path": "/moved", "value": 1},
        {"op": "add", "path": "/a~1b~0c", "value": True},
    ]
    assert apply_patch(JSON_PATCH, doc, ops) == {
        "baz": [1, 9, 2, 7],
        "hello": ["there"],
        "moved": 1,
        "a/b~c": True,
    }
    assert doc == {"foo": "bar", "baz": [1, 2]}


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "add"},
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/x", "value": 1}],
        [{"op": "add", "path": "/baz/5", "value": 1}],
        [{"op": "add", "path": "/baz/01", "value": 1}],
        [{"op": "add", "path": "nope", "value": 1}],
        [{"op": "add", "path": "/foo"}],
        [{"op": "test", "path": "/foo", "value": "other"}],
        [{"op": "move", "from": "/baz", "path": "/baz/0"}],
        [{"op": "frobnicate", "path": "/foo"}],
        [{"op": "remove", "path": ""}],
        [1],
    ],
)
def test_bad_json_patches_are_patch_errors(ops: Any):
    with pytest.raises(PatchError):
        apply_patch(JSON_PATCH, {"foo": "bar", "baz": [1]}, ops)


def test_merge_patch_must_be_an_object():
    with pytest.raises(PatchError):
        apply_patch(MERGE, {}, [1])
