"""End to end: generation and the three benchmark CLIs on a tiny random Llama (in-process)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rasa.evaluation.io import METRIC_COLUMNS

FIXTURES = Path(__file__).resolve().parents[2] / "rasa" / "fixtures"


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def assert_clean_outputs(folder: Path) -> None:
    """Atomic writes leave no temporary files behind."""
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    from rasa.evaluation.generation import HFEngine
    from rasa.modeling import load_model, load_tokenizer

    return HFEngine(load_model(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir)))


def test_truncate_at_stop():
    from rasa.evaluation.generation import truncate_at_stop

    assert truncate_at_stop("a\nif b\ndef c", ("\ndef", "\nif")) == "a"
    assert truncate_at_stop("abc", ()) == "abc"
    assert truncate_at_stop("x<|eot_id|>y", ("<|eot_id|>",)) == "x"


def test_generation_is_seeded_batched_and_stops(engine):
    from rasa.evaluation.generation import DecodingConfig

    prompts = ["def add(x, y):\n", "Below is an instruction. ### Response:\n", "a"]
    sample = DecodingConfig(max_new_tokens=12, do_sample=True, temperature=1.0, top_p=0.95, n=3,
                            batch_size=4, seed=7, stop=("e", "\n"))
    first = engine.generate(prompts, sample, desc=None)
    assert [len(c) for c in first] == [3, 3, 3]
    assert first == engine.generate(prompts, sample, desc=None)  # same seed, same text
    assert all("e" not in text and "\n" not in text for c in first for text in c)
    greedy = DecodingConfig(max_new_tokens=6, batch_size=1)
    one_by_one = engine.generate(prompts, greedy, desc=None)
    batched = engine.generate(prompts, DecodingConfig(max_new_tokens=6, batch_size=3), desc=None)
    assert one_by_one == batched  # left padding does not change greedy outputs
    capped = engine.generate(prompts[:1], DecodingConfig(max_new_tokens=50, max_length=8), desc=None)
    assert len(engine.tokenizer(capped[0][0], add_special_tokens=False).input_ids) <= 8


def test_humaneval_generate_then_score(tiny_model_dir, toy_problems, write_jsonl, tmp_path):
    import json

    from rasa.evaluation import humaneval

    problems = write_jsonl(tmp_path / "he.jsonl", toy_problems)
    samples = tmp_path / "gen" / "samples.jsonl"
    assert humaneval.main([
        "generate", "--model", str(tiny_model_dir), "--problems", str(problems),
        "--n-samples", "2", "--temperature", "0.2", "--top-p", "0.95", "--max-new-tokens", "8",
        "--batch-size", "4", "--seed", "0", "--backend", "hf", "--samples", str(samples)]) == 0
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [(r["task_id"], r["sample"]) for r in records] == [
        ("Toy/0", 0), ("Toy/0", 1), ("Toy/1", 0), ("Toy/1", 1)]
    by_task = {p["task_id"]: p for p in toy_problems}
    assert all(r["solution"] == humaneval.postprocess(by_task[r["task_id"]], r["completion"])
               and r["backend"] == "hf" for r in records)
    assert_clean_outputs(samples.parent)

    out, details = tmp_path / "out" / "he.csv", tmp_path / "out" / "he_d.csv"
    assert humaneval.main([
        "score", "--samples", str(samples), "--problems", str(problems),
        "--run-id", "tiny__code__lora-r4__f100__e2", "--epoch", "2", "--timeout", "10",
        "--workers", "2", "--scorers", "plus,base,bigcode", "--out", str(out),
        "--details", str(details)]) == 0
    columns, rows = read_csv(out)
    assert columns == METRIC_COLUMNS
    assert {(r["benchmark"], r["metric"], r["scorer"]) for r in rows} == {
        ("humanevalplus", "pass@1", s) for s in ("base", "plus", "bigcode")}
    assert all(r["run_id"] == "tiny__code__lora-r4__f100__e2" and r["epoch"] == "2" for r in rows)
    assert all(0.0 <= float(r["value"]) <= 100.0 for r in rows)
    _, per_problem = read_csv(details)
    assert [r["task_id"] for r in per_problem] == ["Toy/0", "Toy/1"]
    assert {r["backend"] for r in per_problem} == {"hf"} and all(r["n"] == "2" for r in per_problem)
    assert_clean_outputs(out.parent)


def test_math_cli_with_an_adapter(tiny_model_dir, lora_adapter_dir, write_jsonl, tmp_path):
    from rasa.evaluation import math as math_eval

    problems = write_jsonl(tmp_path / "m.jsonl", [
        {"problem": "What is 3+4?", "solution": "$\\boxed{7}$", "type": "Prealgebra", "level": "Level 1"},
        {"problem": "Point?", "solution": "$\\boxed{(1,2)}$", "type": "Algebra", "level": "Level 2"},
    ])
    out, details, samples = tmp_path / "m.csv", tmp_path / "m_d.csv", tmp_path / "samples.jsonl"
    assert math_eval.main([
        "generate", "--model", str(tiny_model_dir), "--trained", str(lora_adapter_dir),
        "--problems", str(problems), "--max-new-tokens", "8", "--batch-size", "2",
        "--samples", str(samples)]) == 0
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [r["idx"] for r in records] == [0, 1] and {r["extract"] for r in records} == {"last_response"}
    for r in records:  # the whole decoded sequence; the response follows its last header
        assert r["text"].startswith("Below is an instruction") and r["text"].endswith(r["response"])
        assert r["response"].startswith("Let's think step by step.")
    assert math_eval.main([
        "score", "--samples", str(samples), "--problems", str(problems), "--run-id", "r",
        "--epoch", "1", "--timeout", "5", "--workers", "1", "--out", str(out),
        "--details", str(details)]) == 0
    columns, rows = read_csv(out)
    assert columns == METRIC_COLUMNS
    metrics = {(r["metric"], r["scorer"]) for r in rows}
    for scorer in ("paper", "corrected"):
        assert {("accuracy", scorer), ("accuracy/Prealgebra", scorer), ("accuracy/Algebra", scorer),
                ("accuracy/level1", scorer), ("accuracy/level2", scorer)} <= metrics
    _, per_problem = read_csv(details)
    assert [r["gold"] for r in per_problem] == ["7", "(1,2)"]
    assert {r["backend"] for r in per_problem} == {"hf"}
    assert_clean_outputs(tmp_path)


def test_math_score_rejects_samples_of_other_problems(write_jsonl, tmp_path):
    from rasa.evaluation import math as math_eval

    problems = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "solution": "\\boxed{1}"}] * 2)
    samples = write_jsonl(tmp_path / "s.jsonl", [{"idx": 0, "response": "The answer is: 1"}])
    with pytest.raises(ValueError, match="1 records for 2 problems"):
        math_eval.main(["score", "--samples", str(samples), "--problems", str(problems),
                        "--run-id", "r", "--epoch", "1", "--out", str(tmp_path / "o.csv"),
                        "--details", str(tmp_path / "d.csv")])


def test_math_extraction_takes_the_text_after_the_last_response_header():
    from rasa.evaluation.math import take_response

    text = "P\n\n### Response:\nLet's think. The answer is: 1\n### Response:\nThe answer is: 2"
    assert take_response(text, "last_response") == "The answer is: 2"
    assert take_response(text, "completion") == text


def test_math_scoring_of_known_generations():
    from rasa.evaluation.math import accuracy_rows, score

    problems = [{"idx": i, "gold": g, "gold_paper": g, "type": "Algebra", "level": "1"}
                for i, g in enumerate(["7", "(1,2)", "\\frac{1}{2}", "5"])]
    generations = ["Let's think. The answer is: 7.", "So the point is... The answer is: (1,2).\n",
                   "The answer is: 0.5", "I do not know."]
    details, correct = score(problems, generations, workers=2, timeout=5, desc=None)
    assert correct["paper"] == [True, False, True, False]
    assert correct["corrected"] == [True, True, True, False]
    assert [d["prediction"] for d in details] == ["7", "(1,2)", "0.5", "[INVALID]"]
    assert dict(accuracy_rows(problems, correct["corrected"]))["accuracy"] == 75.0


def test_forgetting_cli(tiny_model_dir, tmp_path):
    from rasa.evaluation import forgetting

    out, details = tmp_path / "f.csv", tmp_path / "f_d.csv"
    assert forgetting.main([
        "--model", str(tiny_model_dir), "--data-dir", str(FIXTURES), "--run-id", "tiny-llama__base",
        "--epoch", "0", "--num-fewshot", "0", "--batch-size", "8", "--limit", "3",
        "--out", str(out), "--details", str(details)]) == 0
    columns, rows = read_csv(out)
    assert columns == METRIC_COLUMNS
    by_bench = {r["benchmark"]: r for r in rows}
    assert [(b, by_bench[b]["metric"]) for b in ("hellaswag", "winogrande", "arc_challenge")] == [
        ("hellaswag", "acc_norm"), ("winogrande", "acc"), ("arc_challenge", "acc_norm")]
    mean = sum(float(by_bench[b]["value"]) for b in ("hellaswag", "winogrande", "arc_challenge")) / 3
    assert float(by_bench["forgetting_avg"]["value"]) == pytest.approx(mean)
    assert all(r["scorer"] == "lm-eval" and r["epoch"] == "0" for r in rows)
    _, docs = read_csv(details)
    assert sorted({d["task"] for d in docs}) == ["arc_challenge", "hellaswag", "winogrande"]
    assert len(docs) == 9
    assert_clean_outputs(tmp_path)
