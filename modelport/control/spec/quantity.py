"""Kubernetes resource quantities (``512Mi``, ``1.5``, ``500m``, ``2e9``), as
k8s.io/apimachinery/pkg/api/resource reads them: binary suffixes Ki…Ei, decimal k…E,
milli ``m``, and plain or exponent numbers."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}  # fmt: skip
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?")


def parse_quantity(value: object) -> Decimal:
    """The quantity's value; ValueError if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("must be a quantity such as 2Gi, 512Mi, 1 or 500m")
    match = _QUANTITY.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"{str(value)[:40]!r} is not a quantity (e.g. 2Gi, 512Mi, 1, 500m)")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E") and len(suffix) > 1:
            return Decimal(number + suffix)
        return Decimal(number) * _SUFFIX[suffix]
    except InvalidOperation:
        raise ValueError(f"{str(value)[:40]!r} is out of range") from None
