"""JSON for results that cross process boundaries: numbers, strings, lists, dicts and arrays.

No pickle: numpy arrays become ``{"__ndarray__": [...], "dtype": ..., "shape": [...]}``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["dumps", "loads", "to_plain", "from_plain"]


def to_plain(obj: Any) -> Any:
    """A JSON-ready copy of ``obj`` (arrays and numpy scalars converted, tuples become lists)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"cannot send an array of dtype {obj.dtype}")
        flat = obj.reshape(-1).tolist()
        if obj.dtype.kind == "f":
            flat = [x if math.isfinite(x) else repr(x) for x in flat]
        return {"__ndarray__": flat, "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return to_plain(np.asarray(obj)) if obj.dtype.kind == "f" and not np.isfinite(obj) else obj.item()
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    raise TypeError(f"cannot send a value of type {type(obj).__name__} between processes")


def from_plain(obj: Any) -> Any:
    """Inverse of :func:`to_plain`."""
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            dtype = np.dtype(obj["dtype"])
            data = [float(x) if isinstance(x, str) else x for x in obj["__ndarray__"]]
            return np.array(data, dtype=dtype).reshape(obj["shape"])
        if "__float__" in obj:
            return float(obj["__float__"])
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(to_plain(obj))


def loads(text: str) -> Any:
    return from_plain(json.loads(text))
