"""The ``paper`` scorer against a port of the authors' checker (``authors_math_checker``), from
model response and gold solution to verdict, through ``rasa.evaluation.math``."""

from __future__ import annotations

import random

import pytest

from rasa.evaluation.math import load_problems, score
from rasa.evaluation.math_check import paper_check
from rasa.evaluation.math_normalize import AuthorsCrash, extract_prediction, paper_gold

import authors_math_checker as authors

# Answer forms, including the ones where a port and a look-alike disagree: leading zeros, lists
# starting with 0, non-ASCII digits, nested braces in a box, " ." endings, "a "/"an " inside words.
ANSWERS = ["7", "007", "010", "10", "0, 1", "0,1", "\u0663", "3", "\\frac{1}{2}", "0.5", "\\dfrac12",
           "2a", "2", "banana", "nan", "a", "x = 5", "5", "(1,2)", "[2,5)", "1, 2", "12", "\\sqrt{8}",
           "2\\sqrt2", "90^\\circ", "90", "\\$18.90", "18.90", "1,000", "1000", "\\text{(A)}", "x^2+1",
           "\\pi", "\\boxed{\\frac{1}{2}}", "\\boxed{3}", "2\\frac{1}{2}", "\\left( 1, 2 \\right)",
           "an 4", "4", "-3", "\\infty"]
ENDINGS = ["", ".", " .", " . ", ".\nMore text.", " .\n", "  "]


def _response(answer: str, ending: str, rng: random.Random) -> str:
    lead = rng.choice(["Let's think step by step. ", "Let's think step by step.\n1+1=2.\n"])
    decoy = rng.choice(["", "The answer is: 9.\n"])
    return f"{lead}{decoy}The answer is: {answer}{ending}"


def _solution(answer: str, rng: random.Random) -> str:
    return rng.choice([
        f"So we get $\\boxed{{{answer}}}$.",
        f"First $\\boxed{{1}}$, then $\\boxed{{{answer}}}$.",
        f"Thus $\\boxed {answer}$.",
        f"$\\boxed {answer}$ and later \\boxed{{9}}.",  # a "\boxed " anywhere wins for the authors
        f"\\fbox{{{answer}}}",
        f"\\boxed{{{answer}}} and \\fbox{{9}}",
    ])


def generated_cases(n: int = 300, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        gold = rng.choice(ANSWERS)
        pred = gold if rng.random() < 0.3 else rng.choice(ANSWERS)
        cases.append((_response(pred, rng.choice(ENDINGS), rng), _solution(gold, rng)))
    return cases


def authors_verdict(response: str, solution: str) -> bool | None:
    """The port's verdict, or None where the authors' code raises."""
    try:
        return authors.process_results(response, solution)
    except (AssertionError, TypeError):
        return None


@pytest.mark.slow
def test_generated_pairs_score_as_the_authors_through_the_cli_functions(tmp_path, write_jsonl):
    cases = generated_cases()
    path = write_jsonl(tmp_path / "p.jsonl", [{"problem": f"q{i}", "solution": s, "type": "Algebra",
                                               "level": "Level 1"} for i, (_, s) in enumerate(cases)])
    problems = load_problems(path)
    _, correct = score(problems, [r for r, _ in cases], workers=2, timeout=5, desc=None)
    expected = [authors_verdict(r, s) for r, s in cases]
    assert None in expected and True in expected and False in expected  # all three occur
    mismatches = [(r, s, got, want) for (r, s), got, want in zip(cases, correct["paper"], expected)
                  if got != bool(want)]
    assert not mismatches, mismatches[:5]
    crashed = [p for p, want in zip(problems, expected) if want is None]
    assert all(p["gold_paper"] is None and p["gold_paper_crash"] for p in crashed)


@pytest.mark.parametrize("pred,gold,want", [
    ("007", "7", False), ("0, 1", "0,1", False), ("10", "010", False), ("\u0663", "3", False),
    ("\\boxed{\\frac{1}{2}}", "0.5", True), ("2a .", "2", True), ("banana .", "banan", True),
    ("nan .", "n", True), ("2a", "2", False), ("0", "0", True), ("12", "12", True)])
def test_listed_cases(pred, gold, want):
    """The issue's list: no digit shortcut where parse_latex refuses; greedy \\boxed unwrap;
    a space kept before a final " ." and then eaten, with letters, by "a "/"an "."""
    response = f"The answer is: {pred}"
    solution = f"$\\boxed{{{gold}}}$"
    assert authors.process_results(response, solution) is want
    assert paper_check(extract_prediction(response, paper=True), paper_gold(solution))["match"] is want


@pytest.mark.parametrize("solution,gold", [
    ("$\\boxed{1}$ and $\\boxed{2}$", "2"), ("$\\boxed 5$ then $\\boxed{6}$", "5"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"), ("\\boxed{a}}", "a")])
def test_gold_extraction_as_the_authors(solution, gold):
    assert paper_gold(solution) == gold == authors.unbox(authors.boxed_span(solution))


@pytest.mark.parametrize("solution", ["\\fbox{3}", "no box", "\\boxed\\frac{1}{2}", "\\boxed{1"])
def test_gold_extraction_crashes_where_the_authors_crash(solution):
    with pytest.raises(AuthorsCrash):
        paper_gold(solution)
    with pytest.raises((AssertionError, TypeError)):
        authors.unbox(authors.boxed_span(solution))
