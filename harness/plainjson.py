"""One JSON convention for records, journals and config hashes: plain types, non-finite floats as strings."""
from __future__ import annotations

import math
from typing import Any


def jsonable(value: Any) -> Any:
    """Plain JSON: numpy scalars to Python, non-finite floats to strings (JSON has no inf/nan)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'inf', '-inf', 'nan'
    return value


def unjson_float(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value
