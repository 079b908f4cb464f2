"""MATH answer extraction, Minerva normalisation and the two scorers (``answers_match``)."""

from __future__ import annotations

import time

import pytest

from rasa.evaluation.math import accuracy_rows, answers_match, check_pairs, load_problems
from rasa.evaluation.math_normalize import (
    INVALID,
    corrected_normalize,
    extract_prediction,
    last_boxed,
    minerva_normalize,
)

TIMEOUT = 3.0
GRACE = 2.0 + 3.0  # the pool's kill grace, plus slack for a loaded 2-core CI machine


@pytest.fixture(scope="module", autouse=True)
def warm_pool():
    answers_match("1", "2", "paper", timeout=TIMEOUT)  # start the shared worker outside the timings
    yield


def test_extraction_and_gold():
    text = "Let's think step by step. 1+1=2.\nThe answer is: 2.\nThe answer is: \\frac{1}{2}.\nmore"
    assert extract_prediction(text) == "\\frac{1}{2}"
    assert extract_prediction("The answer is: (1, 2)") == "(1, 2)"
    assert extract_prediction("no marker here") == INVALID
    assert extract_prediction("The answer is: 2a .") == "2a"
    assert extract_prediction("The answer is: 2a .", paper=True) == "2a "  # the authors keep it
    assert last_boxed("so $\\boxed{3}$ and then $\\boxed{\\frac{1}{2}}$.") == "\\frac{1}{2}"
    assert last_boxed("nested \\boxed{\\{1,\\{2\\}\\}}") == "\\{1,\\{2\\}\\}"
    assert last_boxed("old style \\boxed 5$.") == "5"
    assert last_boxed("\\fbox{7}") == "7"
    assert last_boxed("none") is None


def test_minerva_normalisation_and_its_quirks():
    assert minerva_normalize("x = \\frac12") == "\\frac{1}{2}"
    assert minerva_normalize("\\dfrac12") == "\\dfrac{1}{2}"
    assert minerva_normalize("\\$18.90") == "18.90"
    assert minerva_normalize("90^\\circ") == "90"
    assert minerva_normalize("1,000") == "1000"
    assert minerva_normalize("\\text{(A)}") == "(A)"
    assert minerva_normalize("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"  # greedy, as the authors'
    assert minerva_normalize("2a ") == "2"                          # quirk: "a " eats a letter
    assert corrected_normalize("2a ") == "2a"
    assert corrected_normalize("x = 2\\frac{1}{2}") == "x=(2+\\frac{1}{2})"  # equation kept, mixed number
    assert corrected_normalize("\\pi r^2") == "\\pi r^2" and corrected_normalize("100.") == "100"
    assert minerva_normalize("1, 2") == "12"                       # quirk kept for `paper`
    assert minerva_normalize("\\left(1,2\\right)").startswith("\\le(")  # quirk: "ft" removed
    assert corrected_normalize("1, 2") == "1,2"
    assert corrected_normalize("\\left(1,2\\right)") == "(1,2)"
    assert corrected_normalize("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}") == "\\begin{pmatrix}1\\\\2\\end{pmatrix}"


@pytest.mark.parametrize("answer", ["7", "(1,2)", "[2,5)", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
                                    "\\text{Monday}", "x^2+\\frac{\\sqrt{3}}{2}", "{" * 50, INVALID])
def test_identical_strings_always_match_under_corrected(answer):
    assert answers_match(answer, answer, "corrected", timeout=TIMEOUT)


@pytest.mark.parametrize("a,b", [("\\frac{1}{2}", "0.5"), ("\\dfrac12", "0.5"),
                                 ("\\frac{1}{2}", "\\dfrac12")])
@pytest.mark.parametrize("scorer", ["paper", "corrected"])
def test_equal_values_in_different_forms(a, b, scorer):
    assert answers_match(a, b, scorer, timeout=TIMEOUT)
    assert answers_match(b, a, scorer, timeout=TIMEOUT)


def test_the_paper_flaw_and_its_correction():
    # The authors' scorer: parse_latex cannot read tuples, so identical tuples are "wrong".
    assert answers_match("(1,2)", "(1,2)", "corrected", timeout=TIMEOUT)
    assert not answers_match("(1,2)", "(1,2)", "paper", timeout=TIMEOUT)
    verdicts = check_pairs([
        ("\\left(3, \\frac{\\pi}{2}\\right)", "(3,\\frac{\\pi}{2})"),  # tuple, written differently
        ("[2, 5)", "[2,5)"),                                        # interval
        ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"),
        ("\\{2, 1\\}", "\\{1,2\\}"),                                  # sets are unordered
        ("2, 1", "1,2"),                                            # "all solutions" lists too
        ("1, 2", "12"),                                             # paper's false positive
        ("(2,1)", "(1,2)"),                                         # tuples are ordered
        ("[2,5]", "[2,5)"),                                         # bracket kinds matter
        ("(x+1)^2", "x^2+2x+1"),
        ("5", "6"),
        (INVALID, "5"),
    ], workers=2, timeout=TIMEOUT)
    assert [v["match"] for v in verdicts["corrected"]] == [True, True, True, True, True, False,
                                                           False, False, True, False, False]
    assert [v["match"] for v in verdicts["paper"]] == [False, False, False, False, False, True,
                                                       False, False, True, False, False]


@pytest.mark.parametrize("scorer", ["paper", "corrected"])
@pytest.mark.parametrize("nasty", ["10^{10^{10^{10}}}", "{" * 10_000 + "1" + "}" * 10_000],
                         ids=["tower", "nested-braces"])
def test_pathological_inputs_return_within_the_timeout(nasty, scorer):
    for other in (nasty, "5"):
        start = time.monotonic()
        verdict = answers_match(nasty, other, scorer, timeout=TIMEOUT)
        assert time.monotonic() - start < TIMEOUT + GRACE
        if scorer == "corrected" and other == nasty:
            assert verdict
        if other == "5":
            assert not verdict
    assert answers_match("2", "2.0", scorer, timeout=TIMEOUT)  # the pool still works afterwards


def test_unknown_scorer_is_an_error():
    with pytest.raises(ValueError):
        answers_match("1", "1", "strict")


def test_problem_loading_and_breakdowns(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "m.jsonl", [
        {"problem": "p1", "solution": "so \\boxed{1}.", "type": "Algebra", "level": "Level 1"},
        {"problem": "p2", "solution": "\\boxed{(1,2)}", "type": "Geometry", "level": "Level 3"},
        {"instruction": "p3", "output": "\\boxed{3}", "input": "", "type": "Algebra", "level": "Level ?"},
    ])
    problems = load_problems(path)
    assert [p["gold"] for p in problems] == ["1", "(1,2)", "3"]
    rows = dict(accuracy_rows(problems, [True, False, False]))
    assert rows["accuracy"] == pytest.approx(100 / 3)
    assert rows["accuracy/Algebra"] == 50.0 and rows["accuracy/Geometry"] == 0.0
    assert rows["accuracy/level1"] == 100.0 and rows["accuracy/level?"] == 0.0


def test_paper_scorer_matches_the_authors_recorded_verdicts():
    # verdicts of the authors' is_equiv as checked against their code (the port in authors_math_checker.py)
    pairs = [("(3,\\frac{\\pi}{2})", "(3,\\frac{\\pi}{2})", False), ("[2,5)", "[2,5)", False),
             ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False),
             ("0.5", "\\frac{1}{2}", True), ("(x+1)^2", "x^2+2x+1", True),
             ("90^\\circ", "90", True), ("\\$18.90", "18.90", True), ("1, 2", "12", True)]
    verdicts = check_pairs([(p, g) for p, g, _ in pairs], scorers=("paper",), workers=2, timeout=TIMEOUT)
    assert [v["match"] for v in verdicts["paper"]] == [want for _, _, want in pairs]


@pytest.mark.slow
def test_paper_scorer_shortcuts_never_change_a_verdict():
    """The speed-ups (SLL-first parsing, integer and numeric shortcuts, caching) against the port
    of the authors' check (normalise, parse_latex, simplify(a - b) == 0)."""
    import random
    import sys
    from pathlib import Path

    from rasa.evaluation.math_check import paper_check

    import authors_math_checker as authors

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from math_check import make_pairs

    pairs = [(p, g) for _, p, g in make_pairs(400, seed=3, pathological=0)]
    pairs = random.Random(0).sample(pairs, 120) + [("\\sqrt{8}", "2\\sqrt{2}"), ("\\pi", "3.14159"),
                                                    ("\\frac{x}{x}", "1"), ("x-x", "0"), ("2^{10}", "1024"),
                                                    ("007", "7"), ("0, 1", "0,1"), ("\u0663", "3")]
    for pred, gold in pairs:
        want = authors.equivalent(authors.normalize(pred), authors.normalize(gold), seconds=30)
        assert paper_check(pred, gold, timeout=30)["match"] == want, (pred, gold)


@pytest.mark.parametrize("pred,gold,want", [
    ("2x+3y=6", "2x-3y=6", False), ("x+y+z-1=0", "2x-y+3z+8=0", False),       # same right side
    ("x^2+(y-1)^2=25", "x^2+y^2=25", False), ("2x+2y+2z-2=0", "x+y+z-1=0", True),
    ("y=\\frac34x-2", "3x-4y=8", True), ("x=5", "5", True), ("y=5", "x=5", False),
    ("1", "2\\frac{1}{2}", False), ("5/2", "2\\frac{1}{2}", True), ("1\\frac{2}{5}", "1.4", True),
    ("x(6x^2-1)", "6x^3-x", True), ("x(6x^2-1)", "6x^3+x", False),              # a product
    ("\\sin\\frac{\\pi}{6}", "\\frac12", True), ("\\pi r^2", "r^2\\pi", True),  # pi, the constant
    ("\\log_2 256", "8", True), ("\\log_2 256", "7", False),                    # to Math-Verify
    ("100.", "100", True), ("100.", "0", False), ("\\ln e", "1", True)])
def test_corrected_reads_equations_mixed_numbers_and_misparsed_forms(pred, gold, want):
    from rasa.evaluation.math_check import corrected_check

    assert corrected_check(pred, gold, timeout=TIMEOUT)["match"] is want
