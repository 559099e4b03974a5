"""Just enough of Kubernetes' protobuf encoding to read the Namespace ``kubectl create
namespace`` sends: kubectl writes built-in kinds as ``application/vnd.kubernetes.protobuf``,
the magic ``k8s\\x00`` then a ``runtime.Unknown`` (typeMeta = 1, raw = 2) whose raw bytes are
the object (k8s.io/apimachinery/pkg/runtime/serializer/protobuf). Only the fields read here
are decoded (protobuf wire format: varints and length-delimited fields); answers go back as
JSON, which kubectl also accepts.
"""

from __future__ import annotations

from typing import Any

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The bytes are not the protobuf message expected."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def fields(data: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    out: list[tuple[int, Any]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise ProtobufError("truncated field")
            value, at = data[at : at + size], at + size
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, value))
    return out


def _text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise ProtobufError("a string is not UTF-8") from None


def _string_map(entries: list[Any]) -> dict[str, str]:
    out = {}
    for entry in entries:
        pairs = dict(fields(entry))
        out[_text(pairs.get(1, b""))] = _text(pairs.get(2, b""))
    return out


def decode_object(data: bytes) -> dict[str, Any]:
    """apiVersion, kind and metadata (name, generateName, namespace, labels, annotations)."""
    if not data.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic")
    unknown = fields(data[len(MAGIC) :])
    type_meta = dict(fields(next((v for n, v in unknown if n == 1), b"")))
    raw = next((v for n, v in unknown if n == 2), b"")
    obj = fields(raw)
    meta_fields = fields(next((v for n, v in obj if n == 1), b""))
    metadata: dict[str, Any] = {}
    # ObjectMeta: name = 1, generateName = 2, namespace = 3, labels = 11, annotations = 12.
    for number, key in ((1, "name"), (2, "generateName"), (3, "namespace")):
        value = next((v for n, v in meta_fields if n == number), b"")
        if value:
            metadata[key] = _text(value)
    for number, key in ((11, "labels"), (12, "annotations")):
        entries = [v for n, v in meta_fields if n == number]
        if entries:
            metadata[key] = _string_map(entries)
    return {
        "apiVersion": _text(type_meta.get(1, b"")),
        "kind": _text(type_meta.get(2, b"")),
        "metadata": metadata,
    }
