"""Trainable and extra parameter counts of every method, as in the RaSA paper's Tables 1-2.

``python -m rasa.param_counts`` builds Llama-3.1-8B and Mistral-7B-v0.3 from their configurations on the meta device
(no weights are allocated), wraps them with :func:`rasa.methods.apply_method` and prints the counts next to the
paper's, at the paper's rounding (millions, one decimal). Known differences, all explained in :data:`NOTES`.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import torch

from rasa import methods

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]

COMMON = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
              num_key_value_heads=8, max_position_embeddings=8192, tie_word_embeddings=False)
MODELS = {
    "Llama-3.1-8B": ("llama", dict(COMMON, vocab_size=128256, rope_theta=500000.0)),
    "Mistral-7B-v0.3": ("mistral", dict(COMMON, vocab_size=32768, rope_theta=1000000.0, sliding_window=None)),
}

#: (method, r) -> (trainable, extra) as printed in the paper (millions; None = not in the tables / "-")
PAPER = {
    ("vera", 1024): (1.6, None),
    ("lora", 8): (21.0, None), ("lora", 16): (41.9, None), ("lora", 32): (83.9, None),
    ("mora", 8): (21.0, None), ("mora", 16): (41.9, None), ("mora", 32): (83.9, None),
    ("rasa", 8): (21.0, None), ("rasa", 16): (42.0, None), ("rasa", 32): (83.9, None),
    ("olora", 8): (21.0, None), ("olora", 16): (41.9, None), ("olora", 32): (83.9, None),
    ("adalora", 8): (31.5, 63.0), ("adalora", 16): (62.9, 125.8), ("adalora", 32): (125.9, 251.8),
    ("prilora", 8): (21.3, 10.7), ("prilora", 16): (42.6, 21.3), ("prilora", 32): (85.2, 42.6),
    ("fft", None): (None, None),
}
ORDER = [("fft", None), ("vera", 1024)] + [(m, r) for r in (8, 16, 32)
                                          for m in ("lora", "mora", "olora", "adalora", "prilora", "rasa")]

NOTES = {
    ("mora", 16): "MoRA type 6 gives 41.8M (r_hat 362/286/542); the paper prints 41.9M, LoRA's number.",
    ("mora", 32): "MoRA type 6 gives 83.8M (r_hat 512/404/768); the paper prints 83.9M, LoRA's number.",
    ("adalora", 8): "extra = 2x trainable = 62.9M; the paper's 63.0M is 2x its rounded 31.5M.",
    ("adalora", 32): "init_r = 48 gives 125.8M (paper 125.9M) and extra 251.7M (paper 251.8M = 2x its 125.9M); "
                     "no integer init_r gives 125.9M.",
    ("prilora", 8): "extra: our pruner keeps one importance buffer per A matrix (10.1M); the paper reports 10.7M "
                    "(half the trainable count) without saying what it kept.",
    ("prilora", 16): "extra: 20.2M (A-sized importance buffers) vs the paper's 21.3M (half the trainable count).",
    ("prilora", 32): "extra: 40.5M (A-sized importance buffers) vs the paper's 42.6M (half the trainable count).",
    ("olora", 8): "OLoRA has LoRA's shapes; counted with LoRA's init because its QR cannot run on the meta device.",
}


def build_meta(name: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, kwargs = MODELS[name]
    config = AutoConfig.for_model(model_type, **kwargs)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def count(name: str, method: str, r: int | None) -> dict:
    model = build_meta(name)
    build_as = "lora" if method == "olora" else method  # QR init cannot run on meta tensors; same shapes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = methods.apply_method(model, build_as, r or 8, k=None, alpha=16.0, dropout=0.05,
                                     target_modules=TARGETS, total_steps=1000)
    return methods.parameter_counts(model, method)


def millions(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f}M"


def table(models=tuple(MODELS), rows=ORDER) -> list[dict]:
    out = []
    for name in models:
        for method, r in rows:
            c = count(name, method, r)
            paper_t, paper_e = PAPER[(method, r)]
            ours_t, ours_e = round(c["trainable"] / 1e6, 1), round(c["extra"] / 1e6, 1) if c["extra"] else None
            match = (paper_t is None or ours_t == paper_t) and (paper_e == ours_e)
            out.append({"model": name, "method": method, "r": r, "trainable": c["trainable"], "extra": c["extra"],
                        "paper_trainable": paper_t, "paper_extra": paper_e, "match": match,
                        "note": NOTES.get((method, r), "")})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=list(MODELS), action="append", help="default: both")
    args = ap.parse_args(argv)
    rows = table(tuple(args.model or MODELS))
    print(f"{'model':16} {'method':8} {'r':>5} {'trainable':>14} {'ours':>7} {'paper':>7} "
          f"{'extra':>13} {'ours':>7} {'paper':>7}  match")
    for row in rows:
        pt = "7-8B" if row["method"] == "fft" else millions(row["paper_trainable"] and row["paper_trainable"] * 1e6)
        pe = millions(row["paper_extra"] and row["paper_extra"] * 1e6)
        ours_t = f"{row['trainable'] / 1e9:.2f}B" if row["method"] == "fft" else millions(row["trainable"])
        print(f"{row['model']:16} {row['method']:8} {str(row['r'] or '-'):>5} {row['trainable']:>14,} {ours_t:>7} "
              f"{pt:>7} {row['extra']:>13,} {millions(row['extra'] or None):>7} {pe:>7}  "
              f"{'yes' if row['match'] else 'NO'}{'  ' + row['note'] if row['note'] else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
