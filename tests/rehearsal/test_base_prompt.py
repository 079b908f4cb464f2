"""The base model's chat prompt (`base_prompt: chat`) on SmolLM2's real tokenizer, and chat-shaped
replies to real HumanEval problems through the unchanged scorer."""

from __future__ import annotations

import csv
import json

import pytest
from transformers import AutoTokenizer

from rasa import prompts
from rasa.evaluation import human_eval_problems, humaneval
from rasa.modeling import load_tokenizer

MESSAGE = "Complete the following Python function:\n```python\ndef f(x):\n    pass\n```"


def _template_ids(tok, message: str) -> list[int]:
    text = tok.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                   add_generation_prompt=True)
    return tok(text, add_special_tokens=False).input_ids


@pytest.mark.parametrize("loader", [load_tokenizer, AutoTokenizer.from_pretrained],
                         ids=["adds-bos", "as-shipped"])
def test_chat_prompt_encodes_to_the_templates_tokens(smollm2_tokenizer_dir, loader):
    """One BOS whether or not the tokenizer adds it itself (rasa.modeling.load_tokenizer does)."""
    tok = loader(str(smollm2_tokenizer_dir))
    ids = tok(prompts.chat_prompt(tok, MESSAGE)).input_ids
    assert ids == _template_ids(tok, MESSAGE)
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    assert tok.decode(ids).endswith("<|im_start|>assistant\n")


def test_humaneval_chat_prompt_and_missing_template(smollm2_tokenizer_dir):
    tok = load_tokenizer(str(smollm2_tokenizer_dir))
    problem = human_eval_problems.load(limit=1)[0]
    text = humaneval.build_chat_prompt(problem, tok)
    assert "<|im_start|>user\nComplete the following Python function:\n```python\n" in text
    assert problem["prompt"].strip() in text and "### Instruction" not in text
    tok.chat_template = None
    with pytest.raises(ValueError, match="base_prompt: alpaca"):
        humaneval.build_chat_prompt(problem, tok)


def _replies(problem: dict) -> dict[str, str]:
    whole = problem["prompt"] + problem["canonical_solution"]
    call = f"print({problem['entry_point']}(*{json.dumps(problem['base_input'][0])}))"
    return {
        # prose, the whole function in a block with a stray call after it, prose
        "function": f"Here is the function:\n```python\n{whole}\n\n{call}\n```\nIt works by ...",
        "body": f"```python\n{problem['canonical_solution']}```",  # the body only
        "unclosed": f"```python\n{whole}",  # cut by the token limit before the closing fence
        "prose": "This function returns the expected result for every input.",
    }


def test_chat_replies_score_through_the_unchanged_scorer(tmp_path):
    problems = human_eval_problems.load(limit=3)
    kinds = list(_replies(problems[0]))
    records = [{"task_id": p["task_id"], "sample": j,
                "solution": humaneval.chat_solution(p, _replies(p)[kind])}
               for p in problems for j, kind in enumerate(kinds)]
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert humaneval.main([
        "score", "--samples", str(tmp_path / "samples.jsonl"), "--problems", str(tmp_path / "problems.jsonl"),
        "--run-id", "chat", "--epoch", "0", "--timeout", "20", "--workers", "2", "--scorers", "plus,base",
        "--out", str(tmp_path / "metrics.csv"), "--details", str(tmp_path / "details.csv")]) == 0
    with open(tmp_path / "details.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    for row in rows:  # function, body and unclosed pass; prose fails
        assert row["correct_plus"] == row["correct_base"] == "3", row
