"""The labelled MATH answer pairs (``data/math_labelled.tsv``): the ``paper`` scorer agrees with
the port of the authors' checker on every pair; ``corrected`` never accepts a wrong equation or
mixed number and is at least as accurate as Math-Verify alone.

The file's ``class`` column names the answer form; ``heldout:`` rows were written after the
scorer had been tuned on the others (see ``rasa/evaluation/README.md`` for the numbers).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rasa.evaluation.math import check_pairs
from rasa.evaluation.math_check import paper_check
from rasa.evaluation.math_normalize import extract_prediction, paper_gold

import authors_math_checker as authors

DATA = Path(__file__).parent / "data" / "math_labelled.tsv"


def labelled() -> list[dict]:
    with open(DATA, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    for row in rows:
        row["correct"] = row["correct"] == "1"
    return rows


def test_the_labelled_set_is_large_and_mixed():
    rows = labelled()
    assert len(rows) >= 300
    assert {r["correct"] for r in rows} == {True, False}
    for form in ("equation", "mixed_number", "function_like", "pi", "log", "trailing_dot"):
        assert sum(r["class"] == form for r in rows) >= 10, form


@pytest.mark.slow
def test_paper_agrees_with_the_authors_checker_on_every_labelled_pair():
    disagreements = []
    for row in labelled():
        response, solution = f"The answer is: {row['prediction']}.", f"$\\boxed{{{row['gold']}}}$"
        ours = paper_check(extract_prediction(response, paper=True), paper_gold(solution))["match"]
        if ours != authors.process_results(response, solution):
            disagreements.append((row["prediction"], row["gold"], ours))
    assert not disagreements


@pytest.mark.slow
def test_corrected_has_no_false_accepts_and_beats_math_verify():
    rows = labelled()
    verdicts = check_pairs([(r["prediction"], r["gold"]) for r in rows],
                           scorers=("corrected", "math-verify"), workers=2, timeout=5)
    got = {s: [bool(v["match"]) for v in verdicts[s]] for s in verdicts}
    false_accepts = [(r["class"], r["prediction"], r["gold"]) for r, ok in zip(rows, got["corrected"])
                     if ok and not r["correct"]]
    assert not false_accepts
    right = {s: sum(ok == r["correct"] for r, ok in zip(rows, got[s])) for s in got}
    assert right["corrected"] >= right["math-verify"], right
