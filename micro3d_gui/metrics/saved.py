"""An :class:`~micro3d_gui.metrics.report.Evaluation` as a JSON text and back (no Qt), so
a project keeps its analysis (curves and properties) and draws it again when reopened.

Plain JSON plus three tagged forms: ``{"__array__": [...], "dtype": "float64"}`` for a
numpy array, ``{"__int_keys__": [[k, v], ...]}`` for a dict keyed by integers (phases), and
``{"__elastic__": {...}}`` for an :class:`~micro3d_gui.properties.elastic.ElasticResult`.
Non-finite numbers are written as ``NaN`` / ``Infinity`` (as Python's json reads them):
this file is the app's own, the exported reports follow :mod:`micro3d_gui.io.export`.
Nothing is ever executed on reading (no pickle).
"""
from __future__ import annotations

import json
from dataclasses import fields

import numpy as np

from ..properties.elastic import ElasticResult
from .report import Evaluation


def _encode(value):
    if isinstance(value, ElasticResult):
        return {"__elastic__": {f.name: _encode(getattr(value, f.name))
                                for f in fields(ElasticResult)}}
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {"__int_keys__": [[int(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(obj: dict):
    if "__array__" in obj:
        return np.asarray(obj["__array__"], dtype=obj.get("dtype", "float64"))
    if "__int_keys__" in obj:
        return {int(k): v for k, v in obj["__int_keys__"]}
    if "__elastic__" in obj:
        return ElasticResult(**obj["__elastic__"])
    return obj


def evaluation_to_json(evaluation: Evaluation) -> str:
    return json.dumps({f.name: _encode(getattr(evaluation, f.name))
                       for f in fields(Evaluation)})


def evaluation_from_json(text: str) -> Evaluation:
    """ValueError (naming no file: the caller does) when ``text`` is not one."""
    try:
        data = json.loads(text, object_hook=_decode)
        return Evaluation(**data)
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"not a saved analysis ({exc})") from None
