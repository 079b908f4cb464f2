"""What SmolLM2's real tokenizer exposes: BOS `<|im_start|>` not added by the tokenizer itself,
EOS = PAD = `<|im_end|>`. Training sequences and generation prompts must start alike."""

from __future__ import annotations

import pytest

from rasa import data, prompts
from rasa.modeling import load_tokenizer

pytestmark = pytest.mark.slow  # reads the real model's GGUF file: 45 s measured on a loaded 2-core machine

QUESTION = "Write a function that returns the sum of a list."
ANSWER = "def total(xs):\n    return sum(xs)"


def test_special_tokens_and_padding(smollm2_tokenizer_dir):
    tok = load_tokenizer(str(smollm2_tokenizer_dir))
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert tok.padding_side == "left"
    batch = tok([prompts.prompt("a"), prompts.prompt(QUESTION)], padding=True).input_ids
    assert batch[0][0] == tok.pad_token_id and batch[1][0] == tok.bos_token_id


def test_generation_prompt_is_the_training_sequence_prefix(smollm2_tokenizer_dir):
    """One BOS in both; the prompt's tokens are exactly the start of the training tokens."""
    tok = load_tokenizer(str(smollm2_tokenizer_dir))
    train = data.encode(QUESTION, ANSWER, tok, max_length=512)["input_ids"]
    prompt = tok(prompts.prompt(QUESTION)).input_ids
    assert train[0] == prompt[0] == tok.bos_token_id
    assert train.count(tok.bos_token_id) == prompt.count(tok.bos_token_id) == 1
    assert train[:len(prompt)] == prompt
    assert train[-1] == tok.eos_token_id and train.count(tok.eos_token_id) == 1
