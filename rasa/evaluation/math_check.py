"""The two MATH answer checkers. They run inside worker processes (see :mod:`.workers`).

``paper``
    The authors' ``is_equiv``: Minerva-normalise both answers, then, inside one SIGALRM timeout,
    ``sympy.simplify(parse_latex(pred) - parse_latex(gold)) == 0``. A parse failure, a timeout or any
    other exception is a mismatch, and there is no string-equality shortcut, so identical tuples,
    intervals and matrices (which ``parse_latex`` cannot read) are scored wrong. Reproduced on
    purpose, flaw included.

``corrected``
    1. identical strings match (before any parsing, so even unparseable answers match themselves);
    2. after :func:`~.math_normalize.corrected_normalize` (which keeps equations whole and reads
       mixed numbers as sums), identical strings match;
    3. structures are compared element by element: tuples and points ``(a,b)`` in order, intervals
       with their bracket types, sets ``\\{a,b\\}`` and bare lists ``a, b`` as multisets, unions
       ``\\cup`` piecewise, matrices (``pmatrix``/``bmatrix``/...) cell by cell;
    4. equations as equations: ``x = 5`` against ``5`` or ``x = 5`` by the value (the same
       variable on the left), other ``l1 = r1`` against ``l2 = r2`` by ``(l1 - r1) / (l2 - r2)``
       being a nonzero constant; scalars by ``parse_latex`` and ``simplify(a - b) == 0``, with
       ``pi`` read as the constant;
    5. sympy's verdict, either way, counts only where sympy read both sides right: a parse error,
       an undefined function other than ``x(...)`` (one letter, one argument, read as the
       product it is in an answer: ``x(6x^2-1)``), ``\\log`` (``\\log_2256``), a stray
       "." (``100.`` read as ``1*0``), structures of different kinds, equation chains or a timeout
       send the pair to Math-Verify (``math_verify.verify``; on the raw answers, or on the
       normalised ones if Math-Verify cannot read the raw text), whose verdict is final.

Speed-ups that never change a verdict: parse results are cached per process; two digit strings
are compared as integers (``parse_latex`` reads them as exactly those Integers); ``simplify`` is
skipped for a difference that is already a sympy number, or that evaluates to a clearly nonzero
number at a point (a value-preserving ``simplify`` cannot turn it into 0).

Each function takes a ``timeout`` in seconds and bounds its own pure-Python work with SIGALRM
(so the worker must run them in its main thread); work stuck in C code (big-integer powers, regex
backtracking) is bounded by the parent process, which kills the worker.
"""

from __future__ import annotations

import contextlib
import re
import signal
from itertools import permutations

from rasa.evaluation.math_normalize import INVALID, corrected_normalize, minerva_normalize


class CheckTimeout(Exception):
    """Raised by the SIGALRM handler when a check runs past its time."""


@contextlib.contextmanager
def alarm(seconds: float):
    """Raise :class:`CheckTimeout` after ``seconds`` of wall time (main thread only)."""

    def handler(signum, frame):
        raise CheckTimeout(f"answer check exceeded {seconds} s")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_PARSE_CACHE: dict[str, object] = {}
_PARSE_CACHE_MAX = 50_000
# parse_latex reads these (ASCII, no leading zero) as exactly that Integer; it rejects "007"
_DIGITS = re.compile(r"0|[1-9][0-9]*")


_PREDICTION = {"mode": None}  # None: ANTLR's default (full LL); else a PredictionMode value


def _install_two_stage_parsing() -> bool:
    """Let :func:`_parse_latex` choose the ANTLR prediction mode of sympy's LaTeX parser.

    ANTLR documents that SLL prediction either returns the same parse tree as full LL or
    reports a syntax error; so parsing in SLL first and re-parsing in LL after any error gives
    exactly sympy's results, about 4x faster. Returns False (plain parsing) if sympy's internals
    are not where this expects them.
    """
    try:
        from sympy.parsing.latex._antlr.latexparser import LaTeXParser
    except ImportError:
        return False
    if getattr(LaTeXParser, "_rasa_two_stage", False):
        return True
    original_init = LaTeXParser.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if _PREDICTION["mode"] is not None:
            self._interp.predictionMode = _PREDICTION["mode"]

    LaTeXParser.__init__ = init
    LaTeXParser._rasa_two_stage = True
    return True


def _sympy_parse_latex(text: str):
    from sympy.parsing.latex import parse_latex

    if not _install_two_stage_parsing():
        return parse_latex(text)
    from antlr4.atn.PredictionMode import PredictionMode

    _PREDICTION["mode"] = PredictionMode.SLL
    try:
        return parse_latex(text)
    except CheckTimeout:
        raise
    except Exception:  # noqa: BLE001 - SLL may fail where LL succeeds: retry in full LL
        pass
    finally:
        _PREDICTION["mode"] = None
    return parse_latex(text)


def _parse_latex(text: str):
    """``sympy.parsing.latex.parse_latex`` with a per-process cache (errors are cached too)."""
    cached = _PARSE_CACHE.get(text)
    if cached is None:
        try:
            cached = ("ok", _sympy_parse_latex(text))
        except CheckTimeout:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised below as a fresh exception
            cached = ("error", type(exc), str(exc)[:200])
        if len(_PARSE_CACHE) < _PARSE_CACHE_MAX:
            _PARSE_CACHE[text] = cached
    if cached[0] == "error":
        try:
            error = cached[1](cached[2])
        except Exception:  # noqa: BLE001 - exception types with other signatures
            error = ValueError(cached[2])
        raise error
    return cached[1]


def _clearly_nonzero(diff) -> bool:
    """True when ``diff`` evaluates to a finite number clearly away from 0 at one point.

    Free symbols get fixed irrational-looking values (distinct per symbol). A value away from 0
    proves ``diff`` is not identically zero, so a value-preserving ``simplify`` cannot return 0.
    Anything that does not evaluate to a plain finite number says nothing (returns False).
    """
    import sympy

    symbols = sorted(diff.free_symbols, key=str)
    point = {s: sympy.Float(0.5772156649 + 0.6180339887 * i) for i, s in enumerate(symbols)}
    try:
        value = diff.evalf(30, subs=point) if point else diff.evalf(30)
        value = complex(value)
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return False
    return all(v == v and abs(v) != float("inf") for v in (value.real, value.imag)) and (
        abs(value) > 1e-9
    )


def _simplifies_to_zero(diff) -> bool:
    """``sympy.simplify(diff) == 0`` with two verdict-preserving shortcuts:

    * a sympy number has no args, and ``simplify`` returns such atoms unchanged;
    * an expression that is numerically nonzero at some point is not identically zero, so
      ``simplify`` (which preserves values) cannot turn it into 0.
    Everything else (numerically zero, or not evaluable) goes through ``simplify`` itself.
    """
    import sympy

    if diff.is_Number:
        return bool(diff == 0)
    if _clearly_nonzero(diff):
        return False
    return bool(sympy.simplify(diff) == 0)


# --------------------------------------------------------------------------------------- paper


def paper_check(prediction: str, gold: str, timeout: float = 5.0) -> dict:
    """The authors' verdict. Returns ``{"match", "note", "pred_norm", "gold_norm"}``."""
    out = {"match": False, "note": "", "pred_norm": "", "gold_norm": ""}
    try:
        with alarm(timeout):
            pred_norm = minerva_normalize(prediction)
            gold_norm = minerva_normalize(gold)
            out.update(pred_norm=pred_norm, gold_norm=gold_norm)
            if _DIGITS.fullmatch(pred_norm) and _DIGITS.fullmatch(gold_norm):
                # parse_latex reads a digit string as that Integer: same verdict, 1000x faster
                out["match"] = int(pred_norm) == int(gold_norm)
                return out
            diff = _parse_latex(pred_norm) - _parse_latex(gold_norm)
            out["match"] = _simplifies_to_zero(diff)
    except CheckTimeout:
        out["note"] = "timeout"
    except BaseException as exc:  # noqa: BLE001 - the authors' bare except, incl. RecursionError
        if isinstance(exc, KeyboardInterrupt):
            raise
        out["note"] = f"error:{type(exc).__name__}"
    return out


# ----------------------------------------------------------------------------------- corrected

_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.S)
_OPENERS = {"(": "paren", "[": "bracket", "\\{": "brace", "\\langle": "angle"}
_CLOSERS = {")": "paren", "]": "bracket", "\\}": "brace", "\\rangle": "angle"}
_TOKEN = re.compile(r"\\\{|\\\}|\\langle|\\rangle|[()\[\]{}]")


def _top_level_split(text: str, separator: str) -> list[str]:
    """Split at ``separator`` occurrences outside any bracket."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        if text.startswith(("\\{", "\\langle"), i):
            depth += 1
            i += 2 if text.startswith("\\{", i) else 7
            continue
        if text.startswith(("\\}", "\\rangle"), i):
            depth -= 1
            i += 2 if text.startswith("\\}", i) else 7
            continue
        char = text[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _enclosing(text: str) -> tuple[str, str, str] | None:
    """``(open_kind, inner, close_kind)`` if one bracket pair encloses the whole string."""
    opener = next((o for o in _OPENERS if text.startswith(o)), None)
    closer = next((c for c in _CLOSERS if text.endswith(c)), None)
    if opener is None or closer is None or len(text) < len(opener) + len(closer):
        return None
    inner = text[len(opener) : len(text) - len(closer)]
    depth = 0  # the outer pair must enclose everything: inner brackets must balance
    for token in _TOKEN.findall(inner):
        depth += 1 if token in ("(", "[", "{", "\\{", "\\langle") else -1
        if depth < 0:
            return None
    if depth != 0:
        return None
    return _OPENERS[opener], inner, _CLOSERS[closer]


def _structure(text: str):
    """A comparable structure, or ``None`` for a scalar."""
    matrix = _MATRIX.match(text)
    if matrix:
        rows = [r for r in re.split(r"\\\\", matrix.group(2)) if r.strip()]
        return ("matrix", [[c.strip() for c in row.split("&")] for row in rows])
    pieces = _top_level_split(text, "\\cup")
    if len(pieces) > 1:
        return ("union", pieces)
    enclosed = _enclosing(text)
    if enclosed:
        open_kind, inner, close_kind = enclosed
        items = _top_level_split(inner, ",")
        if open_kind == "brace" and close_kind == "brace":
            return ("set", items)
        if len(items) > 1:
            return ("sequence", (open_kind, close_kind), items)
        return None  # "(5)" is a scalar in parentheses
    items = _top_level_split(text, ",")
    if len(items) > 1:
        return ("set", items)  # "Enter all solutions, separated by commas": order is free
    return None


_SIGNED_INT = re.compile(r"^[+-]?\d+$")
# What may stand left of "=" in "x = 5": a letter (with a subscript), a Greek letter, f(x).
_LONE_VARIABLE = re.compile(r"[A-Za-z](_\{?\w+\}?)?|\\[A-Za-z]+|[A-Za-z]\([A-Za-z]\)")
# Text sympy's LaTeX grammar misreads: "\log_2256" (base 2256?), "\log 100" (natural log, where
# MATH means base 10), a "." not between digits ("100." is read as 1*0).
_MISREAD = re.compile(r"\\log|(?<!\d)\.|\.(?!\d)")


# Set when the sympy comparison could not really decide (a side did not parse or was not read
# right, the structures differ in kind, an exception): only then is Math-Verify asked.
_UNDECIDED = {"flag": False}


def _undecided() -> bool:
    _UNDECIDED["flag"] = True
    return False


def _read(text: str):
    """``parse_latex(text)`` with ``pi`` as the constant, or ``None`` if sympy may misread it
    (a parse error, an undefined function, a ``\\log``, a stray "." or the symbol ``e``)."""
    import sympy
    from sympy.core.function import AppliedUndef

    if _MISREAD.search(text):
        return None
    try:
        expr = _parse_latex(text)
    except CheckTimeout:
        raise
    except Exception:  # noqa: BLE001 - unparseable
        return None
    if not isinstance(expr, sympy.Expr) or sympy.Symbol("e") in expr.free_symbols:
        return None  # "e" is Euler's number or a variable: Math-Verify decides
    # "x(6x^2-1)" is a product in an answer; only a one-letter name with one argument is read so
    calls = expr.atoms(AppliedUndef)
    if any(len(c.func.__name__) != 1 or len(c.args) != 1 for c in calls):
        return None
    expr = expr.replace(lambda e: isinstance(e, AppliedUndef),
                        lambda e: sympy.Symbol(e.func.__name__) * e.args[0])
    return expr.subs(sympy.Symbol("pi"), sympy.pi)


def _equation_equiv(a: list[str], b: list[str]) -> bool:
    """``l1 = r1`` against ``l2 = r2``: the same equation up to a nonzero constant factor."""
    import sympy

    sides = [_read(t) for t in (*a, *b)]
    if any(e is None for e in sides):
        return _undecided()
    da, db = sides[0] - sides[1], sides[2] - sides[3]
    if da == 0 or db == 0:
        return bool(da == db)
    ratio = sympy.cancel(da / db)
    if ratio.free_symbols:
        ratio = sympy.simplify(ratio)
    return bool(not ratio.free_symbols and ratio.is_number and ratio != 0 and ratio.is_finite)


def _scalar_equiv(a: str, b: str) -> bool:
    import sympy

    a, b = a.strip(), b.strip()
    if a == b:
        return True
    if _SIGNED_INT.match(a) and _SIGNED_INT.match(b):
        return int(a) == int(b)
    ea, eb = _top_level_split(a, "="), _top_level_split(b, "=")
    if len(ea) > 2 or len(eb) > 2:
        return _undecided()  # chains "x = y = 3": left to Math-Verify
    if len(ea) == 2 or len(eb) == 2:
        lone = [len(e) == 2 and bool(_LONE_VARIABLE.fullmatch(e[0])) for e in (ea, eb)]
        if len(ea) == len(eb):
            if all(lone) and ea[0] == eb[0]:  # "x = 5" vs "x = 5.0": same variable, same value
                return _scalar_equiv(ea[1], eb[1])
            return _equation_equiv(ea, eb)  # "y = x/3" vs "x = 3y"; "x = 5" vs "y = 5" differ
        if any(lone):  # "x = 5" vs "5"
            return _scalar_equiv(ea[-1], eb[-1])
        return _undecided()
    if _structure(a) is not None or _structure(b) is not None:
        verdict = _structural_equiv(a, b)
        return _undecided() if verdict is None else verdict
    ra, rb = _read(a), _read(b)
    if ra is None or rb is None:
        return _undecided()
    if ra == rb:
        return True
    try:
        diff = ra - rb
        if (ra.has(sympy.Float) or rb.has(sympy.Float)) and not diff.free_symbols:
            # "1.4" against 7/5: a decimal's binary rounding is not a difference
            value, scale = diff.evalf(), max(1, abs(ra.evalf()), abs(rb.evalf()))
            if value.is_Number and scale.is_Number:
                return bool(abs(value) <= 1e-9 * scale)
        return _simplifies_to_zero(diff)
    except CheckTimeout:
        raise
    except Exception:  # noqa: BLE001
        return _undecided()


def _multiset_equiv(xs: list[str], ys: list[str]) -> bool:
    if len(xs) != len(ys):
        return False
    if len(xs) > 6:  # avoid factorial blow-up: greedy matching
        remaining = list(ys)
        for x in xs:
            hit = next((i for i, y in enumerate(remaining) if _scalar_equiv(x, y)), None)
            if hit is None:
                return False
            remaining.pop(hit)
        return True
    return any(all(_scalar_equiv(x, y) for x, y in zip(xs, perm)) for perm in permutations(ys))


def _structural_equiv(a: str, b: str) -> bool | None:
    """True/False when both sides have a structure, ``None`` when at least one is a scalar."""
    sa, sb = _structure(a), _structure(b)
    if sa is None or sb is None:
        return None
    if sa[0] != sb[0]:
        _UNDECIDED["flag"] = True
        return False
    kind = sa[0]
    if kind == "matrix":
        ra, rb = sa[1], sb[1]
        if [len(r) for r in ra] != [len(r) for r in rb]:
            _UNDECIDED["flag"] = True  # shapes differ: maybe a transcription Math-Verify reads
            return False
        return all(
            _scalar_equiv(x, y) for row_a, row_b in zip(ra, rb) for x, y in zip(row_a, row_b)
        )
    if kind == "union":
        return len(sa[1]) == len(sb[1]) and all(_scalar_equiv(x, y) for x, y in zip(sa[1], sb[1]))
    if kind == "set":
        return _multiset_equiv(sa[1], sb[1])
    # ordered sequence: tuples, points, intervals (bracket kinds must agree)
    return (
        sa[1] == sb[1]
        and len(sa[2]) == len(sb[2])
        and all(_scalar_equiv(x, y) for x, y in zip(sa[2], sb[2]))
    )


def _math_verify(gold: str, prediction: str, timeout: float) -> bool | None:
    """Math-Verify's verdict, or None when it cannot read one of the answers."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    seconds = max(1, int(round(timeout)))
    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    parsed_gold = parse(f"${gold}$", extraction_config=configs, parsing_timeout=seconds)
    parsed_pred = parse(f"${prediction}$", extraction_config=configs, parsing_timeout=seconds)
    if not parsed_gold or not parsed_pred:
        return None
    return bool(verify(parsed_gold, parsed_pred, timeout_seconds=seconds))


def corrected_check(prediction: str, gold: str, timeout: float = 5.0) -> dict:
    """The corrected verdict. Returns ``{"match", "note", "pred_norm", "gold_norm"}``."""
    out = {"match": False, "note": "", "pred_norm": "", "gold_norm": ""}
    if prediction.strip() == gold.strip():
        out.update(match=True, note="exact")
        return out
    if prediction.strip() == INVALID:
        out["note"] = "invalid"
        return out
    _UNDECIDED["flag"] = False
    try:
        with alarm(timeout):
            pred_norm, gold_norm = corrected_normalize(prediction), corrected_normalize(gold)
            out.update(pred_norm=pred_norm, gold_norm=gold_norm)
            if pred_norm == gold_norm:
                out.update(match=True, note="normalized-exact")
                return out
            if _SIGNED_INT.match(pred_norm) and _SIGNED_INT.match(gold_norm):
                out["match"] = int(pred_norm) == int(gold_norm)  # two integers: nothing to add
                out["note"] = "integer"
                return out
            verdict = _structural_equiv(pred_norm, gold_norm)
            if verdict is None:
                verdict = _scalar_equiv(pred_norm, gold_norm)
            if verdict:
                out.update(match=True, note="sympy")
                return out
            if not _UNDECIDED["flag"]:
                out["note"] = "sympy-unequal"
                return out
    except CheckTimeout:
        out["note"] = "timeout"
    except RecursionError:
        out["note"] = "error:RecursionError"
    # Second opinion where sympy could not decide (unparseable side, structures of different
    # kinds, timeout). Math-Verify sets its own SIGALRM timeouts, so it runs outside ours.
    try:
        verdict = _math_verify(gold, prediction, timeout)
        normalized = (out["gold_norm"], out["pred_norm"])
        if verdict is None and out["pred_norm"] and normalized != (gold, prediction):
            verdict = _math_verify(*normalized, timeout)  # raw text unreadable: try normalised
        if verdict:
            out.update(match=True, note="math-verify")
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        out["note"] = (out["note"] + f";math-verify:{type(exc).__name__}").lstrip(";")
    return out


def math_verify_check(prediction: str, gold: str, timeout: float = 5.0) -> dict:
    """Math-Verify alone on the raw answers (the baseline ``corrected`` is measured against)."""
    out = {"match": False, "note": "math-verify", "pred_norm": "", "gold_norm": ""}
    try:
        out["match"] = bool(_math_verify(gold, prediction, timeout))
    except Exception as exc:  # noqa: BLE001 - a crash is a mismatch, as in the other scorers
        out["note"] = f"math-verify:{type(exc).__name__}"
    return out


SCORERS = {"paper": paper_check, "corrected": corrected_check, "math-verify": math_verify_check}


def check(scorer: str, prediction: str, gold: str, timeout: float = 5.0) -> dict:
    """Dispatch by scorer name (the worker entry point)."""
    try:
        fn = SCORERS[scorer]
    except KeyError:
        raise ValueError(f"unknown scorer {scorer!r}; expected one of {sorted(SCORERS)}") from None
    return fn(prediction, gold, timeout)


def warm_up() -> None:
    """Import sympy's LaTeX parser and Math-Verify (done once per worker, or in a forkserver)."""
    import sympy  # noqa: F401
    from sympy.parsing.latex import parse_latex

    parse_latex("1")
    import logging

    import math_verify  # noqa: F401

    # Math-Verify logs every parse timeout with the whole input (10,000 braces...): keep quiet.
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
