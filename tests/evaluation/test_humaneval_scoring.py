"""HumanEval+ post-processing as the authors' harness does it, the ``bigcode`` scorer, and ``score``'s
input checks."""

from __future__ import annotations

import csv

import pytest

from rasa.evaluation import humaneval, humaneval_bigcode
from rasa.evaluation.sandbox import Limits


@pytest.mark.parametrize(("completion", "body"), [
    ("\n    return x + y\n", "\n    return x + y"),  # right-stripped first
    ("\n    return 1\n#c\n    return 2", "\n    return 1"),  # first stop word
    ("\n\treturn x\nresult = 3", "\n\treturn x"),  # tabs indent; first non-indented line
    ("\n    return x\n\ndef helper():\n    pass", "\n    return x\n"),  # text before the stop word kept
    ("x = 1\n    return 2", ""),  # line 0 (the rest of the prompt's last line) counts too
    ("\n    return 0<|eot_id|>junk", "\n    return 0"),
    ("\n    return 0\n   \n  ", "\n    return 0"),
])
def test_postprocess_is_the_harness_remove_last_block(toy_problems, completion, body):
    problem = toy_problems[0]
    assert humaneval.postprocess(problem, completion) == problem["prompt"].rstrip() + body


def test_instruction_field_is_taken_stripped(toy_problems):
    problem = dict(toy_problems[0], instruction="  Add two numbers.\n")
    prompt = humaneval.build_prompt(problem)
    assert "### Instruction:\nAdd two numbers.\n\n### Response:\ndef add(" in prompt


def test_check_code_drops_repeated_inputs(toy_problems):
    problem = dict(toy_problems[0], base_input=[[1, 2], [0, 0]], plus_input=[[1, 2], [5, 5]])
    code = humaneval_bigcode.check_code(problem, {"base": [3, 0], "plus": [3, 10]})
    assert "    inputs = [[1, 2], [0, 0], [5, 5]]\n    results = [3, 0, 10]\n" in code


def test_bigcode_verdicts(toy_problems):
    expected = humaneval.compute_expected(toy_problems)
    add, halve = toy_problems
    programs = [
        [add["prompt"] + body for body in (
            "    return x + y\n",
            "    return x + y if abs(x) < 1000 else 0\n",  # wrong on a plus input only
            "    while True:\n        pass\n")],  # runs past the time limit
        [halve["prompt"] + body for body in (
            "    return x / 2 + 1e-9\n",  # within atol
            "    return x / 2 + 1e-3\n")],
    ]
    results = humaneval.score_programs(toy_problems, programs, expected, Limits(timeout=3),
                                       workers=2, desc=None, scorers=("bigcode",))
    assert [[r["bigcode"] for r in res] for res in results] == [
        ["pass", "fail", "timeout"], ["pass", "fail"]]
    assert all(r["base"] is None for res in results for r in res)  # evalplus not run
    rows, metrics = humaneval.summarize(toy_problems, results, ("bigcode",))
    assert [r["correct_bigcode"] for r in rows] == [1, 1]
    assert metrics == {("bigcode", "pass@1"): pytest.approx(100 * (1 / 3 + 1 / 2) / 2)}


def _score_args(tmp_path, samples, problems, *extra):
    return ["score", "--samples", str(samples), "--problems", str(problems), "--run-id", "r",
            "--epoch", "1", "--out", str(tmp_path / "m.csv"), "--details", str(tmp_path / "d.csv"),
            *extra]


def test_score_reads_completions_and_refuses_bad_files(toy_problems, write_jsonl, tmp_path):
    problems = write_jsonl(tmp_path / "p.jsonl", toy_problems)
    samples = write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": "Toy/0", "completion": "\n    return x + y\nprint(add(1, 2))"},
        {"task_id": "Toy/1", "solution": toy_problems[1]["prompt"] + "    return x\n"},
        {"task_id": "Other/9", "solution": "anything"}])  # not in the problems: ignored
    assert humaneval.main(_score_args(tmp_path, samples, problems)) == 0
    with open(tmp_path / "d.csv", newline="") as fh:
        assert [(r["task_id"], r["correct_plus"]) for r in csv.DictReader(fh)] == [
            ("Toy/0", "1"), ("Toy/1", "0")]

    no_program = write_jsonl(tmp_path / "bad.jsonl", [{"task_id": "Toy/0", "output": "x"}])
    with pytest.raises(SystemExit, match="line 1: needs a 'solution'"):
        humaneval.main(_score_args(tmp_path, no_program, problems))
    missing = write_jsonl(tmp_path / "few.jsonl", [{"task_id": "Toy/0", "solution": "x"}])
    with pytest.raises(SystemExit, match="no samples for 1 problem.*Toy/1.*--limit"):
        humaneval.main(_score_args(tmp_path, missing, problems))
    assert humaneval.main(_score_args(tmp_path, missing, problems, "--limit", "1")) == 0
    with open(tmp_path / "d.csv", newline="") as fh:
        assert [r["task_id"] for r in csv.DictReader(fh)] == ["Toy/0"]
    with pytest.raises(SystemExit, match="--scorers: unknown \\['evalplus'\\]"):
        humaneval.main(_score_args(tmp_path, samples, problems, "--scorers", "plus,evalplus"))
