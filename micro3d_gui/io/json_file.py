"""The one reader of the JSON files a user hands us (a ``--materials`` file, a project's
``project.json``): bounded in size and nesting before it is parsed, then checked against
a schema, so a damaged or hand-edited file gives one sentence naming the file, the field
and the fix instead of a RecursionError or a TypeError deep in the app.

A schema is written as Python type hints: ``str``, ``int``, ``float`` (an int is a float
too), ``bool``, ``None``, ``list[X]``, ``tuple[X, ...]`` and ``tuple[X, Y]`` (JSON lists),
``dict[str, X]``, unions (``X | None``), ``object`` (anything) and dataclasses (a JSON
object whose known keys are checked; keys it lacks take the dataclass's defaults, keys it
does not know are left alone, for files of newer versions).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from pathlib import Path

import numpy as np

from ..errors import InputError

#: Largest JSON file read: ours are a few kB (a project listing thousands of micrographs
#: stays under 1 MiB); parsing takes several times the text's size in memory.
MAX_JSON_BYTES = 16 << 20
#: Deepest nesting read: ours nest at most 5 levels; Python's parser gives up (with a
#: RecursionError) at about a thousand.
MAX_JSON_DEPTH = 32

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest (brackets inside strings
    do not count), without parsing it."""
    bare = _STRING.sub("", text).encode("utf-8", "replace")
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
             - np.isin(codes, (ord("]"), ord("}"))))
    return int(np.cumsum(steps).max(initial=0))


def read_json(path: str | os.PathLike, error: type[InputError] = InputError,
              fix: str = "") -> object:
    """The parsed JSON of ``path``; ``error`` (an InputError class) naming the file when
    it cannot be read, is larger than :data:`MAX_JSON_BYTES`, nests deeper than
    :data:`MAX_JSON_DEPTH` or is not JSON; ``fix`` ends each message."""
    p = Path(path)
    end = f"; {fix}" if fix else ""
    try:
        size = p.stat().st_size
        if size > MAX_JSON_BYTES:
            raise error(f"{p}: is {size:,} bytes, more than the {MAX_JSON_BYTES:,} a "
                        f"settings file may hold{end}")
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: is not UTF-8 text ({exc.reason}){end}") from None
    except OSError as exc:
        raise error(f"{p}: cannot be read ({exc.strerror or exc}){end}") from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{p}: nests {depth} levels deep, more than the {MAX_JSON_DEPTH} a "
                    f"settings file needs; the file is damaged or not ours{end}")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise error(f"{p}: is not valid JSON ({exc}), so it cannot be read{end}") from None


class SchemaMismatch(Exception):
    """A value that does not fit its schema: ``field`` (dotted path) and ``want``."""

    def __init__(self, field: str, value, want: str):
        super().__init__(field, want)
        self.field, self.value, self.want = field, value, want

    def describe(self) -> str:
        text = json.dumps(self.value, default=str)
        text = text if len(text) <= 40 else text[:37] + "..."
        return f"{self.field or 'the top level'} is {text}, not {self.want}"


def _name(hint) -> str:
    if hint is type(None) or hint is None:
        return "null"
    if dataclasses.is_dataclass(hint) or hint is dict:
        return "an object"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_name(h) for h in typing.get_args(hint))
    if origin in (list, tuple):
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values"
        return f"a list of {_name(args[0]).removeprefix('a ').removeprefix('an ')}s" \
            if args else "a list"
    if origin is dict:
        return "an object"
    return {bool: "true or false", int: "a whole number", float: "a number",
            str: "a text"}.get(hint, getattr(hint, "__name__", str(hint)))


def check_value(value, hint, field: str = "") -> None:
    """Raise :class:`SchemaMismatch` at the first part of ``value`` (parsed JSON) that
    does not fit the type hint ``hint`` (see the module docstring)."""
    def fail():
        raise SchemaMismatch(field, value, _name(hint))

    def at(key) -> str:
        return f"{field}.{key}" if field else str(key)

    if hint is object or hint is typing.Any:
        return
    if hint is None or hint is type(None):
        if value is not None:
            fail()
        return
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                check_value(value, option, field)
                return
            except SchemaMismatch:
                continue
        fail()
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            fail()
        hints = typing.get_type_hints(hint)
        for f in dataclasses.fields(hint):
            if f.name in value:
                check_value(value[f.name], hints[f.name], at(f.name))
        return
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list):
            fail()
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                fail()
            for i, (v, h) in enumerate(zip(value, args)):
                check_value(v, h, at(i))
        elif args:
            for i, v in enumerate(value):
                check_value(v, args[0], at(i))
        return
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            fail()
        args = typing.get_args(hint)
        for k, v in value.items():
            if args:
                check_value(v, args[1], at(k))
        return
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    if not ok:
        fail()


def read_checked_json(path: str | os.PathLike, schema, error: type[InputError] = InputError,
                      fix: str = "") -> object:
    """:func:`read_json` checked against ``schema`` (:func:`check_value`): ``error``
    naming the file and the field that does not fit."""
    data = read_json(path, error, fix)
    try:
        check_value(data, schema)
    except SchemaMismatch as exc:
        raise error(f"{Path(path)}: {exc.describe()}{f'; {fix}' if fix else ''}") from None
    return data
