"""The paper's alpaca-chat prompts (Appendix B, Figures 8 and 9), shared by training and evaluation.

Training sequence: ``<bos>PREAMBLE\n\n### Instruction:\n{q}\n\n### Response:\n{a} <eos>``.
The authors' code masks only the text *between* the two headers (the question and the blank line
after it) from the loss; :func:`instruction_span` returns that character span.

Not the paper's: :func:`chat_prompt` and :data:`CODE_CHAT_REQUEST` prompt an untrained chat model
through its own chat template (the base-model row, ``benchmarks.humanevalplus.base_prompt: chat``).
"""

from __future__ import annotations

PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
INSTRUCTION_HEADER = "### Instruction:\n"
RESPONSE_HEADER = "### Response:\n"
MATH_COT = "Let's think step by step."


def prompt(question: str) -> str:
    """Everything up to and including the response header (no BOS: the tokenizer adds it)."""
    return f"{PREAMBLE}\n\n{INSTRUCTION_HEADER}{question.strip()}\n\n{RESPONSE_HEADER}"


def training_text(question: str, answer: str) -> str:
    """The full training sequence without BOS/EOS; the caller appends ``" " + eos``."""
    return prompt(question) + answer.strip()


def instruction_span(text: str) -> tuple[int, int]:
    """Character span strictly between the instruction and response headers (the masked part)."""
    start = text.index(INSTRUCTION_HEADER) + len(INSTRUCTION_HEADER)
    end = text.index(RESPONSE_HEADER, start)
    return start, end


def math_prompt(problem: str) -> str:
    """Figure 8: the alpaca prompt followed by "Let's think step by step."."""
    return prompt(problem) + MATH_COT


def code_prompt(instruction: str, function_prefix: str) -> str:
    """Figure 9: the alpaca prompt, then the imports, signature and docstring to complete."""
    return prompt(instruction) + function_prefix


CODE_CHAT_REQUEST = "Complete the following Python function:\n```python\n{code}\n```"


def chat_prompt(tokenizer, message: str) -> str:
    """``message`` as the user's turn of the tokenizer's chat template, up to the assistant's turn.

    Returned as text that the tokenizer encodes into exactly the template's tokens: where the
    tokenizer puts BOS before every text itself (Llama's; SmolLM2's as
    :func:`rasa.modeling.load_tokenizer` loads it) and the template starts with BOS, that BOS is
    dropped from the text so it is not doubled. Raises ``ValueError`` without a chat template.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{tokenizer.name_or_path}: the tokenizer has no chat template; set "
                         "benchmarks.humanevalplus.base_prompt: alpaca")
    text = tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                         add_generation_prompt=True)
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id]:
        text = text[len(bos):]
    return text
