"""Trainable and extra parameter counts of every method, as in the RaSA paper's Tables 1-2.

``python -m rasa.param_counts`` builds Llama-3.1-8B and Mistral-0.3-7B (the paper's spelling of Mistral-7B-v0.3)
from their configurations on the meta device (no weights are allocated), wraps them with
:func:`rasa.methods.apply_method` and prints the counts next to the paper's (read from ``paper_numbers.csv``, see
:mod:`rasa.report.reference`), at the paper's rounding (millions, one decimal). Every known difference is stated
in :data:`KNOWN` with the number we get; :func:`check` fails on any other difference (exit status 1).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import warnings
from dataclasses import dataclass

import torch

from rasa import method_registry, methods
from rasa.report import reference

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]

COMMON = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
          "num_key_value_heads": 8, "max_position_embeddings": 8192, "tie_word_embeddings": False}
#: Keyed by the paper's model names (the ``model`` column of paper_numbers.csv).
MODELS = {
    "Llama-3.1-8B": ("llama", dict(COMMON, vocab_size=128256, rope_theta=500000.0)),
    "Mistral-0.3-7B": ("mistral", dict(COMMON, vocab_size=32768, rope_theta=1000000.0, sliding_window=None)),
}
PAPER_TABLES = ("table1", "table2")
COUNT_METRICS = {"trainable_params_M": "trainable", "trainable_params": "trainable", "extra_params_M": "extra"}


@dataclass(frozen=True)
class Known:
    """A documented difference from the paper: our count (millions, one decimal) where it is not the paper's."""

    why: str
    trainable: float | None = None
    extra: float | None = None


#: (method, r) -> what we get where it differs from the paper, and why (the same for both models).
KNOWN = {
    ("mora", 16): Known("MoRA type 6 gives 41.8M (r_hat 362/286/542); the paper prints 41.9M, LoRA's number.",
                        trainable=41.8),
    ("mora", 32): Known("MoRA type 6 gives 83.8M (r_hat 512/404/768); the paper prints 83.9M, LoRA's number.",
                        trainable=83.8),
    ("adalora", 8): Known("extra = 2x trainable = 62.9M; the paper's 63.0M is 2x its rounded 31.5M.", extra=62.9),
    ("adalora", 32): Known("init_r = 48 gives 125.8M (paper 125.9M) and extra 251.7M (paper 251.8M = 2x its "
                           "125.9M); no integer init_r gives 125.9M.", trainable=125.8, extra=251.7),
    ("prilora", 8): Known("extra: our pruner keeps one importance buffer per A matrix (10.1M); the paper reports "
                          "10.7M (half the trainable count) without saying what it kept.", extra=10.1),
    ("prilora", 16): Known("extra: 20.2M (A-sized importance buffers) vs the paper's 21.3M (half the trainable "
                           "count).", extra=20.2),
    ("prilora", 32): Known("extra: 40.5M (A-sized importance buffers) vs the paper's 42.6M (half the trainable "
                           "count).", extra=40.5),
    ("olora", 8): Known("OLoRA has LoRA's shapes; counted with LoRA's init because its QR cannot run on the meta "
                        "device."),
}


def paper_counts(model: str) -> dict[tuple[str, int | None], dict]:
    """``(method, r) -> {"trainable": ..., "extra": ...}`` as the paper prints them for ``model`` (Tables 1-2):
    millions as floats, text where the paper prints text (FFT's ``7-8B``), ``None`` where it prints "-"."""
    out: dict[tuple[str, int | None], dict] = {}
    for table in PAPER_TABLES:
        rows = reference.paper_rows(table, model=model)
        for _, x in rows[rows["metric"].isin(list(COUNT_METRICS))].iterrows():
            method = method_registry.by_label(x["method"])
            cell = out.setdefault((method.name, int(x["rank"]) if method.has_rank else None),
                                  {"trainable": None, "extra": None})
            value = x["value"] if math.isnan(x["number"]) else float(x["number"])
            kind = COUNT_METRICS[x["metric"]]
            if cell[kind] is not None and cell[kind] != value:
                raise ValueError(f"{reference.PAPER_NUMBERS}: {model} {x['method']} r={x['rank']} {kind} is "
                                 f"{cell[kind]} in one table and {value} in {table}")
            cell[kind] = value
    return out


def paper_order(keys) -> list[tuple[str, int | None]]:
    """The tables' row order: own-row methods (FFT, VeRA), then per rank in the registry's order."""
    def key(k):
        method = method_registry.get(k[0])
        at = method_registry.names().index(k[0])
        return (0, at, 0) if method.own_row else (1, k[1], at)
    return sorted(keys, key=key)


def build_meta(name: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, kwargs = MODELS[name]
    config = AutoConfig.for_model(model_type, **kwargs)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def count(name: str, method: str, r: int | None) -> dict:
    model = build_meta(name)
    build_as = method_registry.get(method).count_as or method  # e.g. OLoRA's QR cannot run on meta tensors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = methods.apply_method(model, build_as, r or 8, k=None, alpha=16.0, dropout=0.05,
                                     target_modules=TARGETS, total_steps=1000)
    return methods.parameter_counts(model, method)


def millions(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f}M"


def _same(ours: int, paper) -> bool:
    """Our count equals the paper's at its rounding: millions to one decimal, or a text range such as ``7-8B``."""
    if isinstance(paper, str):
        lo, hi = map(int, re.fullmatch(r"(\d+)-(\d+)B", paper).groups())
        return lo <= round(ours / 1e9) <= hi
    return round(ours / 1e6, 1) == paper


def table(models=tuple(MODELS), rows=None) -> list[dict]:
    """One row per model and (method, r): our counts, the paper's, whether they agree, and any :data:`KNOWN`
    difference. ``rows`` defaults to every count the paper prints, in its order."""
    out = []
    for name in models:
        paper = paper_counts(name)
        for method, r in rows or paper_order(paper):
            c = count(name, method, r)
            p = paper.get((method, r), {"trainable": None, "extra": None})
            match = None
            if (method, r) in paper:
                match = _same(c["trainable"], p["trainable"]) and (
                    _same(c["extra"], p["extra"]) if p["extra"] is not None else c["extra"] == 0)
            known = KNOWN.get((method, r))
            out.append({"model": name, "method": method, "r": r, "trainable": c["trainable"], "extra": c["extra"],
                        "paper_trainable": p["trainable"], "paper_extra": p["extra"], "match": match,
                        "known": known, "note": known.why if known else ""})
    return out


def check(rows) -> list[str]:
    """Every count that is neither the paper's nor the :data:`KNOWN` difference (empty: all explained)."""
    problems = []
    for row in rows:
        if row["match"] is None:
            continue  # the paper prints no count for this method and rank
        known = row["known"] or Known("")
        for kind in ("trainable", "extra"):
            want = getattr(known, kind)
            want = row[f"paper_{kind}"] if want is None else want
            ok = _same(row[kind], want) if want is not None else row[kind] == 0
            if not ok:
                problems.append(f"{row['model']} {row['method']} r={row['r']}: {kind} {row[kind]:,} is neither the "
                                f"paper's {row[f'paper_{kind}']} nor a known difference")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=list(MODELS), action="append", help="default: both")
    args = ap.parse_args(argv)
    rows = table(tuple(args.model or MODELS))
    print(f"{'model':16} {'method':8} {'r':>5} {'trainable':>14} {'ours':>7} {'paper':>7} "
          f"{'extra':>13} {'ours':>7} {'paper':>7}  match")
    for row in rows:
        full = not method_registry.get(row["method"]).has_rank
        paper = row["paper_trainable"]
        pt = (paper or "-") if full else millions(paper and paper * 1e6)
        pe = millions(row["paper_extra"] and row["paper_extra"] * 1e6)
        ours_t = f"{row['trainable'] / 1e9:.2f}B" if full else millions(row["trainable"])
        print(f"{row['model']:16} {row['method']:8} {str(row['r'] or '-'):>5} {row['trainable']:>14,} {ours_t:>7} "
              f"{pt:>7} {row['extra']:>13,} {millions(row['extra'] or None):>7} {pe:>7}  "
              f"{'yes' if row['match'] else 'NO'}{'  ' + row['note'] if row['note'] else ''}")
    problems = check(rows)
    for problem in problems:
        print(f"UNEXPLAINED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
