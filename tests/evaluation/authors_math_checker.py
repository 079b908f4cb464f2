"""Reference for the ``paper`` scorer: the authors' MATH checker, re-implemented step by step.

Follows the control flow of ``process_results`` in the authors' ``utils/minerva_utils.py``
(zwhe99/RaSA) statement by statement, with none of the project's speed-ups, so that the
package's ``paper`` scorer can be compared with it pair by pair. Re-written from a reading of
that code; the Minerva normalisation lists are taken from the package (they are data, Minerva
appendix D, and one copy of them is enough).

``process_results`` returns the authors' verdict, or raises where their code raises (the
gold extraction asserts on ``\\fbox{}`` and on a ``\\boxed`` without braces).
"""

from __future__ import annotations

import re
import signal

import sympy
from sympy.parsing.latex import parse_latex

from rasa.evaluation.math_normalize import REMOVED_EXPRESSIONS, SUBSTITUTIONS


def response_answer(text):
    pieces = text.split("The answer is: ")
    if len(pieces) <= 1:
        return "[INVALID]"
    candidate = pieces[-1].split(".\n")[0].strip()
    if len(candidate) > 0 and candidate[-1] == ".":
        return candidate[:-1]
    return candidate


def boxed_span(text):
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    at = text.rfind("\\boxed")
    if at < 0:
        at = text.rfind("\\fbox")
        if at < 0:
            return None
    open_braces, close_at = 0, None
    for i in range(at, len(text)):
        if text[i] == "{":
            open_braces += 1
        if text[i] == "}":
            open_braces -= 1
            if open_braces == 0:
                close_at = i
                break
    return None if close_at is None else text[at:close_at + 1]


def unbox(span):
    if "\\boxed " in span:  # a TypeError for span None, as theirs
        assert span.startswith("\\boxed ")
        return span[len("\\boxed "):]
    assert span.startswith("\\boxed{")
    assert span.endswith("}")
    return span[len("\\boxed{"):-1]


def normalize(answer):
    answer = answer.split("=")[-1]
    for old, new in SUBSTITUTIONS:
        answer = answer.replace(old, new)
    for word in REMOVED_EXPRESSIONS:
        answer = answer.replace(word, "")
    answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", answer)
    answer = re.sub(r"(\\text\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\textbf\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\overline\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", answer)
    answer = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", answer)
    answer = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", answer)
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():
        answer = answer.replace(",", "")
    return answer


class _Alarm:
    def __init__(self, seconds):
        self.seconds = seconds

    def _fire(self, signum, frame):
        raise TimeoutError("Timeout")

    def __enter__(self):
        signal.signal(signal.SIGALRM, self._fire)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)


def equivalent(x1, x2, seconds=5):
    try:
        with _Alarm(seconds):
            try:
                first, second = parse_latex(x1), parse_latex(x2)
            except (sympy.parsing.latex.errors.LaTeXParsingError, sympy.SympifyError, TypeError):
                return False
            try:
                diff = first - second
            except TypeError:
                return False
            try:
                return sympy.simplify(diff) == 0
            except ValueError:
                return False
    except TimeoutError:
        return False
    except ImportError:
        raise
    except Exception:  # noqa: BLE001 - theirs is a bare `except Exception`
        return False


def process_results(response, solution, seconds=5):
    """The authors' verdict for one model response and one gold solution."""
    return bool(equivalent(normalize(response_answer(response)),
                           normalize(unbox(boxed_span(solution))), seconds))
