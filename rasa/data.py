"""Training data: reading, validating, sampling (25/50/100 %), formatting and loss masking.

Sources: a local JSON Lines file (the tiny default's fixtures) or a folder written by
``datasets.save_to_disk`` (on the cluster, ``rasa.hub dataset`` saves the hub's training sets at
their pinned revisions).

Sampling is nested by construction: one seeded permutation of the whole set, of which a fraction f
keeps the first ⌊N·f⌋ items, so 25 % ⊂ 50 % ⊂ 100 % (as the authors' ``train_ratio``, which keeps
the first items after a seed-42 shuffle).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from rasa import prompts

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


def sample(records: list[dict], fraction: float, seed: int) -> list[dict]:
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    keep = max(1, int(len(records) * fraction))
    return [records[i] for i in order[:keep]]


def content_hash(records: list[dict]) -> str:
    digest = hashlib.sha256()
    for r in records:
        digest.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def write_jsonl(records: list[dict], path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    tmp.replace(path)


def encode(question: str, answer: str, tokenizer, max_length: int, mask: str = "instruction") -> dict:
    """Token ids and labels of one example in the alpaca-chat format.

    ``mask="instruction"`` reproduces the authors' masking: only tokens overlapping the text
    between ``### Instruction:\\n`` and ``### Response:\\n`` (the question and the blank line after
    it) get label -100; the preamble, headers, response, the space and EOS are trained on.
    ``mask="prompt"`` masks everything before the response. Sequences are truncated to
    ``max_length`` tokens (paper: 4096).
    """
    text = tokenizer.bos_token + prompts.training_text(question, answer) + " " + tokenizer.eos_token
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                    truncation=True, max_length=max_length)
    if mask == "instruction":
        lo, hi = prompts.instruction_span(text)
    elif mask == "prompt":
        lo, hi = 0, text.index(prompts.RESPONSE_HEADER) + len(prompts.RESPONSE_HEADER)
    else:
        raise ValueError(f"training.mask must be 'instruction' or 'prompt', got {mask!r}")
    labels = [IGNORE if (start < hi and end > lo) else tok
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
    write_jsonl(subset, args.out)
    Path(str(args.out) + ".sha256").write_text(content_hash(subset) + "\n")
    print(f"{len(subset)} of {len(records)} records -> {args.out}")


if __name__ == "__main__":
    main()
