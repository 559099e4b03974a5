"""Step conditions: a GJSON path that "matches" when it exists in a JSON body, as KServe's
router checks them (cmd/router/main.go: ``gjson.GetBytes(input, route.Condition).Exists()``
after ``gjson.ValidBytes(input)``).

The implementation is pygjson (bindings to tidwall's gjson.rs, the Go library's own port):
it reads KServe's conditions as Go's gjson does, unquoted values included, e.g.
``[@this].#(decision_picker==ERROR)`` and ``instances.#(intval>10)``; gjson-py refuses the
former as a parse error (tests/graph/test_conditions.py runs both sets).

gjson.rs recurses on nesting and overflows the stack on documents nested thousands deep
(seen: a segfault at 100,000 levels). Bodies come from callers and from tenants' models, so
a body is first parsed by orjson, which refuses nesting past 1,024 levels; gjson.rs is
fine at that depth. A body orjson refuses is "not valid JSON" here, as in Go.
"""

from __future__ import annotations

import orjson
import pygjson

# A condition is a path, not a program; past this it is refused when the graph is applied.
MAX_CONDITION_CHARS = 1024


def valid_json(body: bytes) -> bool:
    """Whether ``body`` is one JSON value within orjson's nesting limit (gjson.ValidBytes)."""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


def matches(body: bytes, condition: str) -> bool:
    """Whether the GJSON path ``condition`` exists in ``body``; False for a body that is not
    valid JSON (the caller decides what that means, as KServe's Switch and Sequence differ)."""
    if not valid_json(body):
        return False
    try:
        return bool(pygjson.get_bytes(body, condition).exists())
    except (ValueError, TypeError):
        return False
