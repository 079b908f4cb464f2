"""The hand-written fixture datasets (rasa/fixtures/) keep the real datasets' schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "rasa" / "fixtures"

SCHEMAS = {
    "metamathqa.jsonl": {"type": str, "query": str, "original_question": str, "response": str},
    "magicoder_evol.jsonl": {"instruction": str, "response": str},
    "humanevalplus.jsonl": {
        "task_id": str, "prompt": str, "entry_point": str, "canonical_solution": str,
        "contract": str, "base_input": list, "plus_input": list, "atol": (int, float),
    },
    "math_test.jsonl": {"problem": str, "level": str, "type": str, "solution": str},
    "hellaswag.jsonl": {
        "ind": int, "activity_label": str, "ctx_a": str, "ctx_b": str, "ctx": str,
        "endings": list, "source_id": str, "split": str, "split_type": str, "label": str,
    },
    "winogrande.jsonl": {"sentence": str, "option1": str, "option2": str, "answer": str},
    "arc_challenge.jsonl": {"id": str, "question": str, "choices": dict, "answerKey": str},
}
MIN_ITEMS = {"metamathqa.jsonl": 64, "magicoder_evol.jsonl": 64, "humanevalplus.jsonl": 10,
             "math_test.jsonl": 30, "hellaswag.jsonl": 20, "winogrande.jsonl": 20,
             "arc_challenge.jsonl": 20}
MATH_SUBJECTS = {"Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra",
                 "Number Theory", "Prealgebra", "Precalculus"}


def load(name: str) -> list[dict]:
    with open(FIXTURES / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start + len("\\boxed{"): i - 1] if depth == 0 else None


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema(name):
    rows = load(name)
    assert len(rows) >= MIN_ITEMS[name]
    schema = SCHEMAS[name]
    for row in rows:
        assert set(row) == set(schema), (name, row)
        for key, typ in schema.items():
            assert isinstance(row[key], typ), (name, key, row[key])
            if typ is str:
                assert row[key] or key == "ctx_b", (name, key)


def test_readme_lists_every_file():
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    on_disk = {p.name for p in FIXTURES.glob("*.jsonl")}
    assert on_disk == set(SCHEMAS)
    for name in on_disk:
        assert f"`{name}`" in readme


def test_metamathqa():
    for row in load("metamathqa.jsonl"):
        assert re.fullmatch(r"(MATH|GSM)_(AnsAug|Rephrased|SV|FOBAR)", row["type"])
        assert re.search(r"The answer is: \S[^\n]*\Z", row["response"]), row
        if row["type"].endswith("AnsAug"):
            assert row["original_question"] == row["query"]


def test_magicoder_responses_hold_python():
    for row in load("magicoder_evol.jsonl"):
        code = row["response"]
        if "```python\n" in code:
            code = code.split("```python\n", 1)[1].split("```", 1)[0]
        compile(code, "<fixture>", "exec")
        assert "def " in code


def test_math_test():
    rows = load("math_test.jsonl")
    assert {r["type"] for r in rows} == MATH_SUBJECTS
    for row in rows:
        assert row["level"] in {f"Level {i}" for i in range(1, 6)}
        assert last_boxed(row["solution"]), row
    answers = [last_boxed(r["solution"]) for r in rows]
    assert any(a.startswith("(") and "," in a for a in answers)      # tuples
    assert any(a[0] + a[-1] in {"[)", "(]", "[]"} for a in answers)   # half-open/closed intervals
    assert any("frac" in a for a in answers)


def test_test_questions_not_in_training():
    train = {r["query"] for r in load("metamathqa.jsonl")}
    assert not train & {r["problem"] for r in load("math_test.jsonl")}
    code = "\n".join(r["response"] for r in load("magicoder_evol.jsonl"))
    for task in load("humanevalplus.jsonl"):
        assert f"def {task['entry_point']}(" not in code


def test_labels_in_range():
    for row in load("hellaswag.jsonl"):
        assert len(row["endings"]) == 4 and row["label"] in {"0", "1", "2", "3"}
        assert row["split"] == "val" and row["split_type"] in {"indomain", "zeroshot"}
        assert row["ctx"] == (f"{row['ctx_a']} {row['ctx_b']}" if row["ctx_b"] else row["ctx_a"])
    for row in load("winogrande.jsonl"):
        assert row["sentence"].count("_") == 1 and row["answer"] in {"1", "2"}
    for row in load("arc_challenge.jsonl"):
        assert set(row["choices"]) == {"text", "label"}
        assert row["choices"]["label"] == ["A", "B", "C", "D"] and len(row["choices"]["text"]) == 4
        assert row["answerKey"] in row["choices"]["label"]


def test_humanevalplus_loads_and_canonical_solutions_run(monkeypatch):
    """evalplus's own loader reads the file (offline) and every canonical solution runs on every
    base and plus input, with and without the contract."""
    humaneval = pytest.importorskip("evalplus.data.humaneval")
    from evalplus.gen.util import trusted_exec

    path = str(FIXTURES / "humanevalplus.jsonl")
    # the module reads HUMANEVAL_OVERRIDE_PATH at import; patch the attribute it consults
    monkeypatch.setattr(humaneval, "HUMANEVAL_OVERRIDE_PATH", path)
    problems = humaneval.get_human_eval_plus()  # err_incomplete=True: checks the fields
    assert list(problems) == [f"HumanEval/{i}" for i in range(len(problems))]
    for task_id, task in problems.items():
        assert task["prompt"].rstrip().endswith('"""')
        assert f"def {task['entry_point']}(" in task["prompt"]
        plain = task["prompt"] + task["canonical_solution"]
        guarded = task["prompt"] + task["contract"] + task["canonical_solution"]
        for inputs in (task["base_input"], task["plus_input"]):
            assert inputs and all(isinstance(args, list) for args in inputs), task_id
            assert trusted_exec(plain, inputs, task["entry_point"]) == \
                trusted_exec(guarded, inputs, task["entry_point"]), task_id
