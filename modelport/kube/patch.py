"""The PATCH bodies kube-apiserver accepts for custom resources:

- ``application/merge-patch+json``: JSON Merge Patch (RFC 7386);
- ``application/json-patch+json``: JSON Patch (RFC 6902) with JSON Pointers (RFC 6901);
- ``application/strategic-merge-patch+json``: what ``kubectl apply``/``edit``/``patch`` send
  when the OpenAPI document lets them. For custom resources it is applied as a merge patch:
  lists are replaced whole, since CRD schemas name no merge keys. Its ``$patch``,
  ``$retainKeys``, ``$setElementOrder/...`` and ``$deleteFromPrimitiveList/...`` directives
  (sig-api-machinery's strategic-merge-patch.md) only refine list merging, which a merge patch
  does not do, except ``$patch: delete`` (remove this map) and ``$patch: replace`` (this map
  instead of the original one), honoured here.

Every failure is a :class:`PatchError` whose message says what is wrong.
"""

from __future__ import annotations

import copy
from typing import Any

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE, STRATEGIC)


class PatchError(ValueError):
    """The patch cannot be applied to the object."""


def apply_patch(content_type: str, original: dict[str, Any], patch: Any) -> Any:
    """The object after the patch; the original is left as it was."""
    if content_type == JSON_PATCH:
        return json_patch(original, patch)
    if not isinstance(patch, dict):
        raise PatchError("a merge patch must be a JSON object")
    return merge_patch(original, patch, strategic=content_type == STRATEGIC)


def merge_patch(target: Any, patch: Any, *, strategic: bool = False) -> Any:
    """RFC 7386 MergePatch: objects merge key by key, null deletes, anything else replaces."""
    if isinstance(patch, list) and strategic:
        # Lists are replaced whole; elements that only carry directives go.
        kept = [
            v
            for v in patch
            if not (isinstance(v, dict) and v and all(k.startswith("$") for k in v))
        ]
        return _without_directives(kept)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if strategic:
        directive = patch.get("$patch")
        if directive == "delete":
            return None
        if directive == "replace":
            return _without_directives({k: v for k, v in patch.items() if k != "$patch"})
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if strategic and key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
            continue
        merged = merge_patch(out.get(key), value, strategic=strategic)
        if merged is None and strategic and isinstance(value, dict):
            out.pop(key, None)  # `$patch: delete` of a map
        else:
            out[key] = merged
    return out


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_without_directives(v) for v in value]
    return value


def json_patch(target: dict[str, Any], operations: Any) -> Any:
    """RFC 6902: add, remove, replace, move, copy and test, applied in order."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc: Any = copy.deepcopy(target)
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError(f"operation {i} must be an object with an op")
        name = op["op"]
        path = _pointer(op, "path", i)
        if name == "add":
            doc = _add(doc, path, copy.deepcopy(_value(op, i)))
        elif name == "remove":
            doc = _remove(doc, path)
        elif name == "replace":
            doc = _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(_value(op, i)))
        elif name in ("move", "copy"):
            source = _pointer(op, "from", i)
            value = copy.deepcopy(_get(doc, source))
            if name == "move":
                if path[: len(source)] == source and len(path) > len(source):
                    raise PatchError(f"operation {i}: cannot move a value into itself")
                doc = _remove(doc, source)
            doc = _add(doc, path, value)
        elif name == "test":
            if _get(doc, path) != _value(op, i):
                raise PatchError(f"operation {i}: test failed at {op['path']}")
        else:
            raise PatchError(f"operation {i}: unknown op {name!r}")
    return doc


def _value(op: dict[str, Any], i: int) -> Any:
    if "value" not in op:
        raise PatchError(f"operation {i} ({op['op']}) needs a value")
    return op["value"]


def _pointer(op: dict[str, Any], field: str, i: int) -> list[str]:
    text = op.get(field)
    if not isinstance(text, str):
        raise PatchError(f"operation {i} needs a {field} string")
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"operation {i}: {field} {text!r} is not a JSON pointer")
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _index(container: list[Any], token: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (not adding and index == len(container)):
        raise PatchError(f"array index {index} is out of range")
    return index


def _parent(doc: Any, path: list[str]) -> Any:
    return _get(doc, path[:-1])


def _get(doc: Any, path: list[str]) -> Any:
    node = doc
    for token in path:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"no value at /{'/'.join(path)}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, adding=False)]
        else:
            raise PatchError(f"no value at /{'/'.join(path)}")
    return node


def _add(doc: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _parent(doc, path)
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, adding=True), value)
    else:
        raise PatchError(f"cannot add at /{'/'.join(path)}")
    return doc


def _remove(doc: Any, path: list[str]) -> Any:
    if not path:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, path)
    token = path[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"no value at /{'/'.join(path)}")
        del parent[token]
    elif isinstance(parent, list):
        del parent[_index(parent, token, adding=False)]
    else:
        raise PatchError(f"no value at /{'/'.join(path)}")
    return doc
