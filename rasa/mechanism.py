"""Mechanism check (ours, not in the paper): does RaSA learn a cross-layer shared update that LoRA,
at the same parameter budget, cannot represent?

    python -m rasa.mechanism --model work/models/tiny-llama --out results/mechanism/loss.csv --steps 300 --seed 42

1. **Teacher.** A copy of the dense model whose every targeted weight gets an update
   ``ΔW_i = U_S diag(c_i) V_S + P_i``: a pool ``U_S (out × S)``, ``V_S (S × in)`` common to all ``L``
   layers of a module type with per-layer random coefficients ``c_i`` (so each layer's shared part
   has rank ``S``; default ``S = L·k``) and a small private part ``P_i`` of rank ``p`` (default
   ``r − k``) carrying ``--private-frac`` of the energy. ``ΔW_i`` is scaled to
   ``--teacher-scale × ‖W_i‖_F``. With the defaults each update has rank ``r − k + L·k > r``: LoRA
   at rank ``r`` cannot represent it, RaSA at ``(r, k)`` can exactly.
2. **Students.** The original model with a LoRA or a RaSA adapter (``rasa.methods.apply_method``,
   same ``r``, same ``alpha``, no dropout, same target modules; RaSA has LoRA's A/B parameter count
   plus its diagonals, reported in ``trainable_params``).
3. **Training.** Both students see the same stream of fresh random token sequences (uniform over
   the vocabulary) and minimise the MSE between their logits and the teacher's (``--loss kl``: the
   KL divergence from the teacher's next-token distribution). Adam, constant learning rate, tried
   at every ``--lrs`` value per method (the two parametrisations scale differently, so one shared
   learning rate would favour one of them); the CSV keeps each method's best run.

Output CSV columns: ``method,r,k,step,loss,trainable_params``; ``loss`` is the loss on a fixed
held-out set of ``--eval-size`` random sequences (the same for every method), every
``--log-every`` steps (``step`` 0: before any update). ``--summary JSON`` also records the
teacher's minimum reconstruction errors (LoRA's exact and RaSA's by :mod:`rasa.recon`) and the
final losses.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rasa import method_registry
from rasa.io import write_csv_atomic, write_text_atomic
from rasa.recon import lora_error, rasa_error

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
COLUMNS = ["method", "r", "k", "step", "loss", "trainable_params"]


def _grouped_linears(model: nn.Module, targets: list[str]) -> dict[str, list[tuple[int, nn.Linear]]]:
    """``{module type: [(layer, linear), …]}`` for the targeted ``nn.Linear`` modules."""
    rx = re.compile(r"layers\.(\d+)\.(.+)$")
    groups: dict[str, list] = defaultdict(list)
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear) or name.rsplit(".", 1)[-1] not in targets:
            continue
        m = rx.search(name)
        if m:
            groups[m.group(2)].append((int(m.group(1)), mod))
    return {k: sorted(v, key=lambda x: x[0]) for k, v in sorted(groups.items())}


@torch.no_grad()
def build_teacher(model: nn.Module, targets: list[str], shared_rank: int, private_rank: int,
                  private_frac: float, scale: float, seed: int):
    """Teacher = deep copy of ``model`` with structured updates (see the module docstring).
    Returns ``(teacher, {module type: [ΔW_i]})``."""
    teacher = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    deltas = {}
    for mtype, layers in _grouped_linears(teacher, targets).items():
        out_f, in_f = layers[0][1].weight.shape
        S = shared_rank
        U = torch.linalg.qr(torch.randn(out_f, S, generator=g, dtype=torch.float64))[0] if S else None
        V = torch.linalg.qr(torch.randn(in_f, S, generator=g, dtype=torch.float64))[0].T if S else None
        ds = []
        for _, lin in layers:
            W = lin.weight
            shared = torch.zeros(out_f, in_f, dtype=torch.float64)
            if S:
                c = torch.randn(S, generator=g, dtype=torch.float64)
                shared = (U * c) @ V
            priv = torch.zeros_like(shared)
            if private_rank:
                priv = (torch.randn(out_f, private_rank, generator=g, dtype=torch.float64)
                        @ torch.randn(private_rank, in_f, generator=g, dtype=torch.float64))
            # energy split: private_frac of ‖ΔW‖² in the private part
            def unit(x):
                n = x.norm()
                return x / n if n > 0 else x
            dw = math.sqrt(1 - private_frac) * unit(shared) + math.sqrt(private_frac) * unit(priv)
            dw = unit(dw) * scale * W.double().norm()
            W.add_(dw.to(W.dtype))
            ds.append(dw)
        deltas[mtype] = ds
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher, deltas


def _loss(student_logits, teacher_logits, kind: str):
    if kind == "mse":
        return F.mse_loss(student_logits, teacher_logits)
    t = F.log_softmax(teacher_logits, -1)
    s = F.log_softmax(student_logits, -1)
    return F.kl_div(s.flatten(0, 1), t.flatten(0, 1), log_target=True, reduction="batchmean")


def train_student(base: nn.Module, teacher: nn.Module, method: str, r: int, k: int, lr: float, args, log):
    """Train one student; returns ``(rows, trainable_params)`` with the held-out loss every
    ``--log-every`` steps (step 0: before training)."""
    from rasa.methods import apply_method, parameter_counts

    torch.manual_seed(args.seed)  # same adapter initialisation stream for every method
    uses_k = method_registry.get(method).uses_k
    student = apply_method(copy.deepcopy(base), method, r, k=k if uses_k else None,
                           alpha=args.alpha, dropout=0.0, target_modules=args.targets)
    n_train = parameter_counts(student, method)["trainable"]
    opt = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr)
    vocab = base.config.vocab_size
    data_gen = torch.Generator().manual_seed(args.seed + 1)  # identical batches for every method
    eval_gen = torch.Generator().manual_seed(args.seed + 2)
    eval_ids = torch.randint(0, vocab, (args.eval_size, args.seq_len), generator=eval_gen)
    with torch.no_grad():
        eval_t = teacher(input_ids=eval_ids).logits
    kk = k if uses_k else 0
    rows = []

    def evaluate():
        student.eval()
        with torch.no_grad():
            loss = float(_loss(student(input_ids=eval_ids).logits, eval_t, args.loss))
        student.train()
        return loss

    t0 = time.perf_counter()
    student.train()
    for step in range(args.steps + 1):
        if step % args.log_every == 0 or step == args.steps:
            rows.append([method, r, kk, step, f"{evaluate():.10g}", n_train])
        if step == args.steps:
            break
        ids = torch.randint(0, vocab, (args.batch_size, args.seq_len), generator=data_gen)
        with torch.no_grad():
            tl = teacher(input_ids=ids).logits
        loss = _loss(student(input_ids=ids).logits, tl, args.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    log(f"{method} r={r} k={kk} lr={lr:g}: {n_train} trainable, held-out loss "
        f"{rows[0][4]} -> {rows[-1][4]} ({time.perf_counter() - t0:.1f}s)")
    return rows, n_train


def _tail_mean(rows, frac=0.2):
    losses = [float(x[4]) for x in rows]
    n = max(1, int(round(len(losses) * frac)))
    return sum(losses[-n:]) / n


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rasa.mechanism", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="local HF folder of the dense (tiny) model")
    p.add_argument("--out", required=True, help="loss-curve CSV")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--r", type=int, default=4)
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--methods", default="lora,rasa")
    p.add_argument("--targets", default=",".join(DEFAULT_TARGETS), help="comma-separated module names")
    p.add_argument("--alpha", type=float, default=None, help="LoRA alpha / RaSA scale budget (default 2r)")
    p.add_argument("--lrs", default="1e-3,3e-3,1e-2",
                   help="learning rates tried per method; the CSV keeps each method's best (lowest mean "
                        "held-out loss over the last 20%% of the logged points); all are in --summary")
    p.add_argument("--eval-size", type=int, default=64, help="held-out random sequences")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--loss", choices=["mse", "kl"], default="mse")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--teacher-shared-rank", type=int, default=None, help="S (default L·k)")
    p.add_argument("--teacher-private-rank", type=int, default=None, help="p (default r−k)")
    p.add_argument("--private-frac", type=float, default=0.2, help="share of ‖ΔW‖² in the private part")
    p.add_argument("--teacher-scale", type=float, default=0.5, help="‖ΔW_i‖_F / ‖W_i‖_F")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--summary", default=None, help="optional JSON with reconstruction errors and final losses")
    p.add_argument("--quiet", action="store_true")
    return p


def _teacher_recon(deltas: dict, args, log) -> dict:
    """Per module type: the teacher updates' total energy and LoRA's and RaSA's minimum errors."""
    recon = {}
    for mtype, ds in deltas.items():
        tot = sum(float((d ** 2).sum()) for d in ds)
        e_lora = lora_error(ds, args.r)
        e_rasa, _ = rasa_error(ds, args.r, args.k, 300, init="theorem", tol=1e-12)
        recon[mtype] = {"total": tot, "lora": e_lora, "rasa": e_rasa}
        log(f"teacher {mtype}: relative MRE lora {e_lora / tot:.3g}, rasa {e_rasa / tot:.3g}")
    return recon


def _train_best(base, teacher, method: str, lrs: list[float], args, log, summary: dict) -> list:
    """Train ``method`` at every learning rate; record the sweep in ``summary``; the best run's rows."""
    best = None
    for lr in lrs:
        rws, n = train_student(base, teacher, method, args.r, args.k, lr, args, log)
        score = _tail_mean(rws)
        summary["lr_sweep"].setdefault(method, {})[repr(lr)] = {"tail_mean_loss": score,
                                                                 "final_loss": float(rws[-1][4])}
        if best is None or score < best[0]:
            best = (score, lr, rws, n)
    score, lr, rws, n = best
    summary["best_lr"][method] = lr
    summary["final_loss"][method] = float(rws[-1][4])
    summary["tail_mean_loss"] = {**summary.get("tail_mean_loss", {}), method: score}
    summary["trainable_params"][method] = n
    return rws


def main(argv=None):
    args = _parser().parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.alpha is None:
        args.alpha = 2.0 * args.r

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    for prm in base.parameters():
        prm.requires_grad_(False)
    groups = _grouped_linears(base, args.targets)
    if not groups:
        raise SystemExit(f"no target module {args.targets} in {args.model}")
    L = len(next(iter(groups.values())))
    S = L * args.k if args.teacher_shared_rank is None else args.teacher_shared_rank
    P = args.r - args.k if args.teacher_private_rank is None else args.teacher_private_rank
    teacher, deltas = build_teacher(base, args.targets, S, P, args.private_frac, args.teacher_scale, args.seed)

    summary = {"layers": L, "teacher_shared_rank": S, "teacher_private_rank": P, "r": args.r, "k": args.k,
               "recon": _teacher_recon(deltas, args, log), "final_loss": {}, "trainable_params": {},
               "lr_sweep": {}, "best_lr": {}}
    rows = []
    lrs = [float(x) for x in args.lrs.split(",") if x.strip()]
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        rows += _train_best(base, teacher, method, lrs, args, log, summary)
    out = Path(args.out)
    write_csv_atomic(out, [dict(zip(COLUMNS, row)) for row in rows], columns=COLUMNS)
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.summary, json.dumps(summary, indent=1))
    log(f"wrote {len(rows)} rows to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
