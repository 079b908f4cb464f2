"""Answer extraction and Minerva answer normalisation for MATH.

Re-implemented from the published description (Lewkowycz et al. 2022, "Solving Quantitative
Reasoning Problems with Language Models", Appendix D) and from the digest of the authors' RaSA
code in ``shared/research/original_repo.md`` §4.2; no code was copied.

Two normalisers:

* :func:`minerva_normalize` is the Minerva procedure, quirks included (``"1, 2"`` becomes ``12``,
  and removing the unit ``ft`` turns ``\\left(`` into ``\\le(``), because the ``paper`` scorer
  must reproduce the authors' verdicts.
* :func:`corrected_normalize` applies the same steps but removes ``\\left``/``\\right`` before the
  unit words, keeps matrix row breaks ``\\\\`` intact (Minerva's ``"\\ "`` substitution eats one of
  their backslashes) and strips commas only from real thousands separators (``1,234``), so
  tuples, lists and matrices keep their structure.
"""

from __future__ import annotations

import re

INVALID = "[INVALID]"
ANSWER_MARKER = "The answer is: "

# Minerva appendix D: literal substitutions, applied in this order.
SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    ("\\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
)

# Minerva appendix D: unit and filler words deleted wherever they occur (plain substring removal).
REMOVED_EXPRESSIONS: tuple[str, ...] = (
    "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units",
    "\\ldots", "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm",
    "pounds", "meters", "meals", "edges", "students", "childrentickets", "multiples",
    "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3", "\\text{\n}",
    "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", '"', "\\dots",
)

_DOLLAR_SPAN = re.compile(r"(.*?)(\$)(.*?)(\$)(.*)")
_UNWRAP = tuple(
    re.compile(r"(\\" + cmd + r"\{)(.*?)(\})") for cmd in ("text", "textbf", "overline", "boxed")
)
_FRAC_SHORTHAND = re.compile(r"(frac)([^{])(.)")
_SQRT_SHORTHAND = re.compile(r"(sqrt)([^{])")
_ROW_BREAK = "\x00"
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def _normalize(answer: str, corrected: bool) -> str:
    text = answer.split("=")[-1]
    if corrected:
        # Matrix row breaks "\\\\ " would lose a backslash to the "\\ " substitution below.
        text = text.replace("\\\\", _ROW_BREAK)
    for old, new in SUBSTITUTIONS:
        text = text.replace(old, new)
    if corrected:
        text = text.replace(_ROW_BREAK, "\\\\")
        # \left( / \right) are presentation only; drop them before "ft" can eat "\left".
        text = text.replace("\\left", "").replace("\\right", "")
    for word in REMOVED_EXPRESSIONS:
        text = text.replace(word, "")
    # Keep only what is inside the first $...$ pair, if any. (The count guard changes nothing but
    # skips a regex that backtracks quadratically on long answers without two dollars.)
    if text.count("$") >= 2:
        text = _DOLLAR_SPAN.sub(r"$\3$", text)
    for pattern in _UNWRAP:
        text = pattern.sub(r"\2", text)
    # Shorthand: \fracab -> \frac{a}{b}, \sqrta -> \sqrt{a}.
    text = _FRAC_SHORTHAND.sub(r"frac{\2}{\3}", text)
    text = _SQRT_SHORTHAND.sub(r"sqrt{\2}", text)
    text = text.replace("$", "")
    if corrected:
        if _THOUSANDS.match(text):
            text = text.replace(",", "")
    elif text.replace(",", "").isdigit():
        text = text.replace(",", "")
    return text


def minerva_normalize(answer: str) -> str:
    """Minerva's ``normalize_final_answer`` behaviour, as the authors' scorer applies it."""
    return _normalize(answer, corrected=False)


def corrected_normalize(answer: str) -> str:
    """Minerva normalisation without the two structure-destroying quirks (see module doc)."""
    return _normalize(answer, corrected=True)


def extract_prediction(generation: str) -> str:
    """Text after the last "The answer is: ", up to the first ".\\n", one trailing "." stripped.

    Returns :data:`INVALID` when the marker is absent (the MetaMath answer format).
    """
    if ANSWER_MARKER not in generation:
        return INVALID
    answer = generation.rsplit(ANSWER_MARKER, 1)[1]
    answer = answer.split(".\n", 1)[0].strip()
    if answer.endswith("."):
        answer = answer[:-1]
    return answer.strip()


def last_boxed(solution: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed x``) in a solution."""
    start = max(solution.rfind("\\boxed"), solution.rfind("\\fbox"))
    if start < 0:
        return None
    command = "\\boxed" if solution.startswith("\\boxed", start) else "\\fbox"
    rest = solution[start + len(command):]
    if rest.startswith(" "):
        # "\boxed 5$": the argument runs to the next "$" (MATH has a few of these).
        return rest[1:].split("$")[0].strip()
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, char in enumerate(rest):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return rest[1:i]
    return None
