"""``--param KEY=VALUE`` read the way the analysis's parameter model declares KEY.

Text on a command line has no types, so each value is read by the type of its parameter:

* a list parameter takes a comma-separated list, one item included (``features=hour`` is
  ``["hour"]``), or a JSON array (``q=[0.25,0.5]``); items are numbers where the list holds numbers;
* a text parameter (a column name, a choice) takes the text as it is (``target=true`` is the
  column ``"true"``);
* any other parameter takes JSON (``q=0.5``, ``iterations=10``, ``extremes=true``,
  ``C=null``), or the text as it is if it is not JSON (pydantic then names the problem).

A key the model does not declare is kept as written, and validation names it.
"""

from __future__ import annotations

import enum
import json
import types
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from tessera.errors import ParamsError

__all__ = ["split_items", "read_params"]

_LISTS = (list, tuple, set, frozenset, Sequence, AbstractSet)


def split_items(items: Sequence[str], what: str = "--param") -> dict[str, str]:
    """``KEY=VALUE`` items as a dict (ParamsError naming an item without ``=`` or a key given twice)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamsError(what, [(item, "expected KEY=VALUE")])
        if key in out:
            raise ParamsError(what, [(key, "given twice")])
        out[key] = value
    return out


def _kinds(annotation: Any) -> tuple[str, Any]:
    """("list", item type), ("text", None) or ("json", None) for a parameter's annotation."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        inner = [a for a in get_args(annotation) if a is not type(None)]
        for a in inner:  # a list among the options wins: "a,b" can only mean the list
            if get_origin(a) in _LISTS or a in _LISTS:
                return _kinds(a)
        return _kinds(inner[0]) if len(inner) == 1 else ("json", None)
    if origin in _LISTS or annotation in _LISTS:
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return "list", args[0] if args else Any
    if annotation is str or (isinstance(annotation, type) and issubclass(annotation, str | enum.Enum)):
        return "text", None
    if origin is Literal and all(isinstance(a, str) for a in get_args(annotation)):
        return "text", None
    return "json", None


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _value(annotation: Any, text: str) -> Any:
    kind, item = _kinds(annotation)
    if kind == "text":
        return text
    if kind == "list":
        if text.lstrip().startswith("["):
            parsed = _json_or_text(text)
            if isinstance(parsed, list):
                return parsed
        parts = [p.strip() for p in text.split(",")] if text.strip() else []
        return [_value(item, p) for p in parts]
    return _json_or_text(text)


def read_params(model: type[BaseModel], items: Sequence[str]) -> dict[str, Any]:
    """The ``KEY=VALUE`` items as raw parameters for ``model``, each value read by the declared
    type of its parameter (see the module docstring); validation is the model's."""
    fields = model.model_fields
    out: dict[str, Any] = {}
    for key, text in split_items(items).items():
        if key in fields:
            out[key] = _value(fields[key].annotation, text)
        else:
            out[key] = _value(Any, text) if "," not in text else [_json_or_text(p.strip()) for p in text.split(",")]
    return out
