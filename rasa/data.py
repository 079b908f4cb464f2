"""Training data: reading, validating, sampling (25/50/100 %), formatting and loss masking.

Sources: a local JSON Lines file (the tiny default's fixtures) or a folder written by
``datasets.save_to_disk`` (on the cluster, ``rasa.hub dataset`` saves the hub's training sets at
their pinned revisions).

Sampling is the authors' ``train_ratio``: ``datasets.Dataset.shuffle(seed)`` of the whole set,
then its first ⌊N·f⌋ rows (their ``sft.py`` shuffles with seed 42 and selects ``range(int(N·f))``).
Subsets are therefore nested, 25 % ⊂ 50 % ⊂ 100 %, and kept in the shuffled order, as theirs.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from rasa import prompts
from rasa.io import write_jsonl_atomic

IGNORE = -100


def read_records(source: str, split: str = "train") -> list[dict]:
    path = Path(source)
    if path.suffix in (".jsonl", ".json") and path.is_file():
        with path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if path.is_dir():
        import datasets

        data = datasets.load_from_disk(str(path))
        if isinstance(data, datasets.DatasetDict):
            data = data[split]
        return data.to_list()
    raise FileNotFoundError(f"dataset {source!r}: neither a .jsonl file nor a saved dataset folder")


def check_fields(records: list[dict], fields: list[str], source: str) -> None:
    """Fail before any compute if the dataset lacks a field the task maps to."""
    if not records:
        raise ValueError(f"dataset {source!r} is empty")
    missing = [f for f in fields if f not in records[0]]
    if missing:
        raise ValueError(
            f"dataset {source!r} has no field(s) {missing}; it has {sorted(records[0])}. "
            f"Fix datasets.<name>.question/answer in the config to name its columns."
        )


#: How :func:`sample` draws subsets (logged, and recorded in each run's manifest).
SAMPLING_RULE = "datasets.Dataset.shuffle(seed) + first int(N*f) rows"


def sample(records: list[dict], fraction: float, seed: int) -> list[dict]:
    """The rows ``datasets.Dataset.from_list(records).shuffle(seed=seed)`` puts first, ⌊N·f⌋ of them."""
    import datasets

    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    keep = int(len(records) * fraction)
    if keep == 0:
        raise ValueError(f"fraction {fraction} of {len(records)} records keeps none; use a larger fraction")
    # The permutation depends only on the length and the seed: shuffle a column of indices.
    order = datasets.Dataset.from_dict({"i": list(range(len(records)))}).shuffle(seed=seed)["i"]
    return [records[i] for i in order[:keep]]


def content_hash(records: list[dict]) -> str:
    digest = hashlib.sha256()
    for r in records:
        digest.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


MASKS = ("instruction", "first_instruction", "prompt")
_INSTRUCTION_SPANS = re.compile(
    re.escape(prompts.INSTRUCTION_HEADER) + "(.*?)" + re.escape(prompts.RESPONSE_HEADER), re.DOTALL)


def masked_spans(text: str, mask: str) -> list[tuple[int, int]]:
    """Character spans of ``text`` whose tokens get no loss (``training.mask``).

    ``instruction`` (the authors' ``assistant_only``): every non-overlapping span strictly between
    ``### Instruction:\\n`` and the next ``### Response:\\n`` in the whole sequence, so a response
    that repeats the two headers loses the text between them too. ``first_instruction``: only the
    prompt's own question (the span the authors meant). ``prompt``: everything before the response.
    """
    if mask == "instruction":
        return [m.span(1) for m in _INSTRUCTION_SPANS.finditer(text)]
    if mask == "first_instruction":
        return [prompts.instruction_span(text)]
    if mask == "prompt":
        return [(0, text.index(prompts.RESPONSE_HEADER) + len(prompts.RESPONSE_HEADER))]
    raise ValueError(f"training.mask must be one of {list(MASKS)}, got {mask!r}")


def encode(question: str, answer: str, tokenizer, max_length: int, mask: str = "instruction") -> dict:
    """Token ids and labels of one example in the alpaca-chat format.

    Tokens overlapping a span of :func:`masked_spans` get label -100; with the default (the
    authors') the preamble, headers, response, the space and EOS are trained on. Sequences are
    truncated to ``max_length`` tokens (paper: 4096).
    """
    text = tokenizer.bos_token + prompts.training_text(question, answer) + " " + tokenizer.eos_token
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                    truncation=True, max_length=max_length)
    spans = masked_spans(text, mask)
    labels = [IGNORE if any(start < hi and end > lo for lo, hi in spans) else tok
              for tok, (start, end) in zip(enc["input_ids"], enc["offset_mapping"])]
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


def main(argv=None):
    """CLI for the sampling rule: write the nested, seeded subset and its content hash."""
    import argparse

    parser = argparse.ArgumentParser(description="Sample a fraction of a training set (nested, seeded).")
    parser.add_argument("--source", required=True)
    parser.add_argument("--fields", nargs="+", required=True)
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    records = read_records(args.source)
    check_fields(records, args.fields, args.source)
    subset = sample(records, args.fraction, args.seed)
    write_jsonl_atomic(args.out, subset, sort_keys=True)  # sorted keys, as records_digest hashes them
    Path(str(args.out) + ".sha256").write_text(content_hash(subset) + "\n")
    print(f"{len(subset)} of {len(records)} records ({SAMPLING_RULE}, seed {args.seed}) -> {args.out}")


if __name__ == "__main__":
    main()
