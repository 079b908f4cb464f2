"""Answer extraction and Minerva answer normalisation for MATH.

Re-implemented from the published description (Lewkowycz et al. 2022, "Solving Quantitative
Reasoning Problems with Language Models", Appendix D) and from the behaviour of the authors'
RaSA evaluation (``math_eval.py``, ``utils/minerva_utils.py``); no code was copied.

Two of everything:

* the ``paper`` side reproduces the authors to the character, quirks included:
  :func:`extract_prediction` with ``paper=True`` keeps a space before a final " ." (which the
  ``"a "``/``"an "`` substitutions then act on: ``2a .`` becomes ``2``), :func:`paper_gold` takes
  the gold answer as their ``last_boxed_only_string`` + ``remove_boxed`` do (any ``"\\boxed "`` in
  the solution wins; ``\\fbox`` and a ``\\boxed`` without braces crash their code, here
  :class:`AuthorsCrash`), and :func:`minerva_normalize` keeps ``"1, 2"`` -> ``12``, ``\\left(`` ->
  ``\\le(`` (the unit ``ft`` removed) and the greedy ``\\boxed{...}`` unwrap;
* the ``corrected`` side (:func:`extract_prediction`, :func:`last_boxed`,
  :func:`corrected_normalize`) keeps equations whole (the checker compares both sides), reads
  mixed numbers ``2\\frac{1}{2}`` as sums, keeps the space that ends a command before a letter
  (``\\pi r``, not ``\\pir``), removes ``"a "``/``"an "`` only as articles before a
  word, drops ``\\left``/``\\right`` before the unit words, keeps matrix row breaks, strips a
  trailing ``.`` and strips commas only from real thousands separators (``1,234``).
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
_UNWRAP = tuple(re.compile(r"(\\" + cmd + r"\{)(.*?)(\})") for cmd in ("text", "textbf", "overline"))
_BOXED_GREEDY = re.compile(r"(\\boxed\{)(.*)(\})")
_FRAC_SHORTHAND = re.compile(r"(frac)([^{])(.)")
_SQRT_SHORTHAND = re.compile(r"(sqrt)([^{])")
_ROW_BREAK = "\x00"
_KEPT_SPACE = "\x01"
_COMMAND_SPACE = re.compile(r"(\\[A-Za-z]+) +(?=[A-Za-z])")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
_ARTICLE = re.compile(r"(?<![A-Za-z\\])an? (?=[A-Za-z])")
# "2\frac{1}{2}" at the start of a term: a mixed number (proper fraction of digit strings).
_MIXED = re.compile(r"(?<![\w}^_.])(\d+)\\[dt]?frac\{(\d+)\}\{(\d+)\}")


class AuthorsCrash(ValueError):
    """The authors' gold extraction raises here (their evaluation would stop)."""


def _mixed_to_sum(match: re.Match) -> str:
    whole, num, den = match.groups()
    if int(num) >= int(den):
        return match.group(0)  # an improper "fraction" after a number is a product, not mixed
    return f"({whole}+\\frac{{{num}}}{{{den}}})"


def _unwrap_boxed(text: str) -> str:
    """Replace every ``\\boxed{...}`` by its brace-matched content."""
    while (start := text.find("\\boxed{")) >= 0:
        inner = _braced(text, start + len("\\boxed"))
        if inner is None:
            return text
        text = text[:start] + inner + text[start + len("\\boxed") + len(inner) + 2:]
    return text


def _normalize(answer: str, corrected: bool) -> str:
    text = answer
    if corrected:
        # Matrix row breaks "\\\\ " would lose a backslash to the "\\ " substitution below.
        text = _ARTICLE.sub("", text.strip()).replace("\\\\", _ROW_BREAK)
        substitutions = SUBSTITUTIONS[2:]
    else:
        text = text.split("=")[-1]
        substitutions = SUBSTITUTIONS
    if corrected:  # "\\pi r" must not become the one command "\\pir": keep that space
        text = _COMMAND_SPACE.sub(lambda m: m.group(1) + _KEPT_SPACE, text)
    for old, new in substitutions:
        text = text.replace(old, new)
    if corrected:
        text = text.replace(_ROW_BREAK, "\\\\").replace(_KEPT_SPACE, " ")
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
    text = _unwrap_boxed(text) if corrected else _BOXED_GREEDY.sub(r"\2", text)
    # Shorthand: \fracab -> \frac{a}{b}, \sqrta -> \sqrt{a}.
    text = _FRAC_SHORTHAND.sub(r"frac{\2}{\3}", text)
    text = _SQRT_SHORTHAND.sub(r"sqrt{\2}", text)
    text = text.replace("$", "")
    if not corrected:
        return text.replace(",", "") if text.replace(",", "").isdigit() else text
    text = _MIXED.sub(_mixed_to_sum, text.rstrip("."))
    return text.replace(",", "") if _THOUSANDS.fullmatch(text) else text


def minerva_normalize(answer: str) -> str:
    """Minerva's ``normalize_final_answer`` behaviour, as the authors' scorer applies it."""
    return _normalize(answer, corrected=False)


def corrected_normalize(answer: str) -> str:
    """Minerva normalisation without its structure-destroying quirks (see module doc)."""
    return _normalize(answer, corrected=True)


def extract_prediction(generation: str, paper: bool = False) -> str:
    """Text after the last "The answer is: ", up to the first ".\\n", one trailing "." stripped.

    Returns :data:`INVALID` when the marker is absent (the MetaMath answer format). With
    ``paper=True`` the result is not stripped again after the "." is removed, as the authors'
    ``get_unnormalized_answer``: ``"2a ."`` gives ``"2a "``.
    """
    if ANSWER_MARKER not in generation:
        return INVALID
    answer = generation.rsplit(ANSWER_MARKER, 1)[1].split(".\n", 1)[0].strip()
    if answer.endswith("."):
        answer = answer[:-1]
    return answer if paper else answer.strip()


def _braced(text: str, start: int) -> str | None:
    """Content of the brace group opening at ``text[start]`` (``None`` if unbalanced)."""
    if not text.startswith("{", start):
        return None
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    return None


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
    return _braced(rest, 0)


def paper_gold(solution: str) -> str:
    """The gold answer as the authors' ``remove_boxed(last_boxed_only_string(solution))``.

    * Any ``"\\boxed "`` (with a space) anywhere wins: the text after the last one, up to "$".
    * Else the last ``\\boxed`` (or, if none, the last ``\\fbox``): from there, the first brace
      group that closes at depth 0; it must directly follow ``\\boxed``.
    Raises :class:`AuthorsCrash` where their code raises (no box at all, ``\\fbox``, a
    ``\\boxed`` not followed by ``{``, unbalanced braces).
    """
    if "\\boxed " in solution:
        return solution.split("\\boxed ")[-1].split("$")[0]
    start = solution.rfind("\\boxed")
    if start < 0:
        start = solution.rfind("\\fbox")
        if start < 0:
            raise AuthorsCrash("no \\boxed or \\fbox in the solution (TypeError in remove_boxed)")
    depth = 0
    for end in range(start, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[end], 0)
        if solution[end] == "}" and depth == 0:
            break
    else:
        raise AuthorsCrash("unbalanced braces after the last box (TypeError in remove_boxed)")
    boxed = solution[start:end + 1]
    if not boxed.startswith("\\boxed{"):
        raise AuthorsCrash(f"{boxed[:12]!r}... is not '\\boxed{{' (AssertionError in remove_boxed)")
    return boxed[len("\\boxed{"):-1]
