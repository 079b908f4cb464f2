"""Plain-data codec for the outputs a sandboxed program returns (one copy, used on both sides).

The sandbox child encodes each output with :func:`encode` into JSON text; the trusted parent
rebuilds it with :func:`decode`, which only ever constructs values of the whitelisted types
below, of exactly those types (no subclasses: a ``str`` or ``int`` subclass, a class with its
own ``__eq__``, a generator... is refused). The parent then compares values whose ``==`` is
the built-in one, so no code of the program runs while the verdict is decided.

Whitelist: ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``,
``bytearray``, ``list``, ``tuple``, ``dict``, ``set``, ``frozenset``, ``range``, dict views,
``collections.OrderedDict``/``defaultdict``/``Counter``/``deque``, ``decimal.Decimal``,
``fractions.Fraction``, NumPy scalars and arrays of bool, integer, float, complex and str
dtypes. JSON objects are used only as one-key tags (``{"tuple": [...]}``), so plain JSON
values keep their meaning. Standalone (stdlib + NumPy only): the child loads it by path.
"""

from __future__ import annotations

import collections
import decimal
import fractions
import json

import numpy as np

MAX_DEPTH = 100
MAX_ITEMSIZE = 1 << 16  # bytes per NumPy element when decoding (a str dtype could ask for GiBs)
_INT_JSON = 2**62  # larger ints travel as hex: int <-> decimal text is capped at 4300 digits
_NP_KINDS = "biufcU"


class Unserialisable(ValueError):
    """The value is not plain data (or nests deeper than :data:`MAX_DEPTH`)."""


_DICT_TYPES = {dict: "dict", collections.OrderedDict: "OrderedDict",
               collections.defaultdict: "defaultdict", collections.Counter: "Counter"}
_SEQ_TYPES = {tuple: "tuple", set: "set", frozenset: "frozenset", collections.deque: "deque"}
_VIEW_TYPES = {type({}.keys()): "dict_keys", type({}.values()): "dict_values",
               type({}.items()): "dict_items"}


def _enc(x, depth: int):
    if depth > MAX_DEPTH:
        raise Unserialisable("nested too deeply")
    t = type(x)
    if x is None or t is bool or t is str or t is float:
        return x
    if t is int:
        return x if -_INT_JSON < x < _INT_JSON else {"int": hex(x)}
    if t is list:
        return [_enc(v, depth + 1) for v in x]
    if t in _DICT_TYPES:
        return {_DICT_TYPES[t]: [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in x.items()]}
    if t in _SEQ_TYPES:
        return {_SEQ_TYPES[t]: [_enc(v, depth + 1) for v in x]}
    if t in _VIEW_TYPES:
        items = [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in x] if t is type({}.items()) \
            else [_enc(v, depth + 1) for v in x]
        return {_VIEW_TYPES[t]: items}
    if t is complex:
        return {"complex": [x.real, x.imag]}
    if t is bytes or t is bytearray:
        return {t.__name__: x.hex()}
    if t is range:
        return {"range": [_enc(x.start, depth), _enc(x.stop, depth), _enc(x.step, depth)]}
    if t is decimal.Decimal:
        return {"Decimal": str(x)}
    if t is fractions.Fraction:
        return {"Fraction": [_enc(x.numerator, depth), _enc(x.denominator, depth)]}
    if t is np.ndarray and x.dtype.kind in _NP_KINDS:
        return {"ndarray": [x.dtype.str, list(x.shape), _enc(x.ravel().tolist(), depth + 1)]}
    if isinstance(x, np.generic) and t is x.dtype.type and x.dtype.kind in _NP_KINDS:
        return {"np": [x.dtype.str, _enc(x.item(), depth + 1)]}
    raise Unserialisable(f"type {t.__module__}.{t.__qualname__} is not plain data")


def encode(x) -> str:
    """JSON text for ``x`` (one line); :class:`Unserialisable` if ``x`` is not plain data."""
    return json.dumps(_enc(x, 0), separators=(",", ":"))


def _hashable(v):
    hash(v)
    return v


def _pairs(payload, depth):
    if not isinstance(payload, list):
        raise ValueError("pairs expected")
    out = []
    for pair in payload:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ValueError("pair expected")
        out.append((_hashable(_dec(pair[0], depth + 1)), _dec(pair[1], depth + 1)))
    return out


def _items(payload, depth):
    if not isinstance(payload, list):
        raise ValueError("list expected")
    return [_dec(v, depth + 1) for v in payload]


def _int(v, depth):
    v = _dec(v, depth)
    if type(v) is not int:
        raise ValueError("int expected")
    return v


def _str(v):
    if type(v) is not str:
        raise ValueError("str expected")
    return v


def _np_dtype(code):
    dtype = np.dtype(_str(code))
    if dtype.kind not in _NP_KINDS or dtype.itemsize > MAX_ITEMSIZE:
        raise ValueError("dtype not allowed")
    return dtype


_DECODERS = {
    "int": lambda p, d: int(_str(p), 16),
    "tuple": lambda p, d: tuple(_items(p, d)),
    "set": lambda p, d: {_hashable(v) for v in _items(p, d)},
    "frozenset": lambda p, d: frozenset(_hashable(v) for v in _items(p, d)),
    "deque": lambda p, d: collections.deque(_items(p, d)),
    "dict": lambda p, d: dict(_pairs(p, d)),
    "OrderedDict": lambda p, d: collections.OrderedDict(_pairs(p, d)),
    "defaultdict": lambda p, d: collections.defaultdict(None, _pairs(p, d)),
    "Counter": lambda p, d: collections.Counter(dict(_pairs(p, d))),
    "dict_keys": lambda p, d: dict.fromkeys(_hashable(v) for v in _items(p, d)).keys(),
    "dict_values": lambda p, d: dict(enumerate(_items(p, d))).values(),
    "dict_items": lambda p, d: dict(_pairs(p, d)).items(),
    "complex": lambda p, d: complex(*[float(v) for v in _items(p, d)][:2]),
    "bytes": lambda p, d: bytes.fromhex(_str(p)),
    "bytearray": lambda p, d: bytearray.fromhex(_str(p)),
    "range": lambda p, d: range(*[_int(v, d) for v in _items(p, d)][:3]),
    "Decimal": lambda p, d: decimal.Decimal(_str(p)),
    "Fraction": lambda p, d: fractions.Fraction(*[_int(v, d) for v in _items(p, d)][:2]),
    "ndarray": lambda p, d: np.array(_items(p[2], d), dtype=_np_dtype(p[0])).reshape(
        [_int(v, d) for v in p[1]]),
    "np": lambda p, d: _np_dtype(p[0]).type(_dec(p[1], d + 1)),
}


def _dec(v, depth: int):
    if depth > MAX_DEPTH + 2:
        raise ValueError("nested too deeply")
    if v is None or type(v) in (bool, int, float, str):
        return v
    if type(v) is list:
        return [_dec(x, depth + 1) for x in v]
    if type(v) is dict and len(v) == 1:
        (tag, payload), = v.items()
        if tag in _DECODERS:
            return _DECODERS[tag](payload, depth)
    raise ValueError("not an encoded value")


def decode(text: str | bytes):
    """The value :func:`encode` wrote; ``ValueError`` for anything else (never runs code)."""
    try:
        return _dec(json.loads(text), 0)
    except Exception as exc:  # noqa: BLE001 - TypeError, RecursionError, MemoryError, ...
        raise ValueError(f"malformed encoded value: {type(exc).__name__}") from None
