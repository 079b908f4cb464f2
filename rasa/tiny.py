"""The tiny default's models: a byte-level BPE tokenizer and small Llama/Mixtral-style models.

Nothing is downloaded. The tokenizer is trained on all fixture texts (vocabulary only); each
model is initialised from its config with a fixed seed and then briefly pre-trained (full
parameters, next-token loss) on plain text of the training sets and of the forgetting benchmarks,
so that fine-tuning starts from a model that has seen language rather than from noise, and has
general knowledge that fine-tuning can erase (what Figure 5 measures). The HumanEval+ and MATH
test files are never pre-trained on. The result is saved with ``save_pretrained`` and loaded afterwards through
:func:`rasa.modeling.load_model`, exactly like a hub model.

CLI::

    python -m rasa.tiny --name tiny-llama --spec '{"arch": "llama", "config": {...}, ...}' \
        --vocab-size 512 --seed 42 --tokenizer-corpus rasa/fixtures/*.jsonl \
        --pretrain-corpus rasa/fixtures/{metamathqa,magicoder_evol,hellaswag,...}.jsonl \
        --out work/models/tiny-llama
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM, PreTrainedTokenizerFast

from rasa.data import read_records

ARCHES = {"llama": (LlamaConfig, LlamaForCausalLM), "mixtral": (MixtralConfig, MixtralForCausalLM)}
BOS, EOS = "<s>", "</s>"


def corpus_texts(paths: list[str]) -> list[str]:
    """Every string value of every record of the fixture files (lists flattened), in file order."""
    texts = []

    def collect(value):
        if isinstance(value, str) and value.strip():
            texts.append(value)
        elif isinstance(value, list):
            for v in value:
                collect(v)
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)

    for path in sorted(paths):
        for record in read_records(path):
            collect(record)
    return texts


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style) that prepends BOS, saved as a ``PreTrainedTokenizerFast``."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS, model_max_length=4096
    )


def build_model(arch: str, config: dict, tokenizer, seed: int):
    if arch not in ARCHES:
        raise ValueError(f"models.<name>.arch: unknown architecture {arch!r}; choose one of {sorted(ARCHES)}")
    config_cls, model_cls = ARCHES[arch]
    cfg = config_cls(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        **config,
    )
    torch.manual_seed(seed)
    return model_cls(cfg)


def pretrain(model, tokenizer, texts: list[str], epochs: int, seed: int, lr: float = 3e-3,
             batch_size: int = 16, max_length: int = 256) -> list[float]:
    """Plain next-token pre-training; returns the mean loss of each epoch (deterministic on CPU)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    docs = [tokenizer(t + EOS, truncation=True, max_length=max_length)["input_ids"] for t in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    history = []
    for _ in range(epochs):
        order = list(range(len(docs)))
        rng.shuffle(order)
        losses = []
        for start in range(0, len(order), batch_size):
            batch = [docs[i] for i in order[start:start + batch_size]]
            width = max(len(d) for d in batch)
            ids = torch.full((len(batch), width), tokenizer.pad_token_id)
            labels = torch.full((len(batch), width), -100)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, d in enumerate(batch):
                ids[row, : len(d)] = torch.tensor(d)
                labels[row, : len(d)] = torch.tensor(d)
                mask[row, : len(d)] = 1
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        history.append(sum(losses) / len(losses))
    model.eval()
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--spec", required=True, help="the model's entry of the config, as JSON")
    parser.add_argument("--vocab-size", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--tokenizer-corpus", nargs="+", required=True)
    parser.add_argument("--pretrain-corpus", nargs="+", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    torch.set_num_threads(1)  # bitwise-reproducible CPU kernels

    tokenizer = train_tokenizer(corpus_texts(args.tokenizer_corpus), args.vocab_size)
    texts = corpus_texts(args.pretrain_corpus)
    model = build_model(spec["arch"], spec["config"], tokenizer, args.seed)
    history = pretrain(model, tokenizer, texts, spec.get("pretrain_epochs", 0), args.seed)
    out = Path(args.out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "pretrain_loss.json").write_text(json.dumps({"epoch_mean_loss": history}, indent=1))
    print(f"{args.name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"pre-training loss {history[0] if history else float('nan'):.3f} -> "
          f"{history[-1] if history else float('nan'):.3f}")


if __name__ == "__main__":
    main()
