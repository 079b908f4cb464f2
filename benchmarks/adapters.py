"""Training-step cost of every method on a mid-sized Llama on the CPU, in one run.

    PYTHONPATH=. python benchmarks/adapters.py [--steps 8] [--r 8] [--layers 8] [--hidden 512] [--json out.json]

What it measures (all in this one process, interleaved round-robin so that load drift on a shared machine hits every
method alike; medians over the rounds). Times are the process's CPU time (``time.process_time``) with one torch
thread by default, which other jobs on a shared machine disturb far less than wall-clock time (``--wall`` for
wall-clock, ``--threads`` to change):

* the time of one training step (forward, backward, AdamW step, zero_grad, plus the method's callback work
  for AdaLoRA / PriLoRA) for every method of :mod:`rasa.method_registry` at the same r, and for PEFT LoRA
  at RaSA's effective rank r - k + L*k; ratios to LoRA at r and to LoRA at the effective rank;
* RaSA with the reference implementation's forward (``torch.cat`` of [B~ B_S] and [A~; A_S] on every call) against
  ours;
* a merged RaSA model's inference forward against the bare base model's;
* peak memory of a few training steps per method, each in a fresh subprocess (on the CPU: the highest C-heap use,
  sampled every millisecond during the steps, minus the use just before them, i.e. activations, gradients and
  temporaries on top of the model and optimizer state; ``torch.cuda.max_memory_allocated`` growth on a GPU).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from rasa import method_registry  # noqa: E402  (after the path insert)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
BENCH_METHODS = method_registry.names()  # every registered method


def base_model(layers: int, hidden: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=int(3.5 * hidden), num_hidden_layers=layers,
                      num_attention_heads=8, num_key_value_heads=2, vocab_size=2048, max_position_embeddings=512,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    model.config.use_cache = False
    return model


def concat_forward(self, x, *args, **kwargs):
    """The reference implementation's RaSA forward: rebuild [B~ B_S] and [A~; A_S] by concatenation on every call."""
    result = self.base_layer(x, *args, **kwargs)
    for name in self.active_adapters:
        A, B, _, A_S, B_S, _ = self._parts(name)
        A_cat = torch.cat([A, A_S], dim=0)
        B_cat = torch.cat([B, B_S], dim=1)
        h = self.rasa_dropout[name](x.to(A_cat.dtype))
        result = result + F.linear(F.linear(h, A_cat) * self.rasa_d[name], B_cat)
    return result


CLOCK = time.process_time


def heap_mb() -> float:
    """Bytes the C heap has handed out and not taken back (glibc ``mallinfo2``: uordblks + hblkhd), in MB.

    Torch's CPU tensors are allocated through malloc, so this follows the live tensor memory; unlike the resident set
    size it drops when tensors are freed (glibc keeps freed pages resident)."""
    import ctypes

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                   "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


class HeapSampler:
    """Highest heap use seen while the block runs (sampled every millisecond from a thread)."""

    def __enter__(self):
        self.peak, self._stop = heap_mb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, heap_mb())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, heap_mb())


class Variant:
    def __init__(self, label, method, r, model, k=None, concat=False, total_steps=1000, targets=TARGETS):
        from rasa import methods

        self.label, self.method, self.r = label, method, r
        self.model = methods.apply_method(model, method, r, k=k, alpha=16.0, dropout=0.05, target_modules=targets,
                                          total_steps=total_steps)
        if concat:
            from rasa.adapters.rasa import Linear

            for m in self.model.modules():
                if isinstance(m, Linear):
                    m.forward = concat_forward.__get__(m)
        self.model.train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=1e-5)
        self.callbacks = methods.training_callbacks(self.model, method)
        self.step_no = 0
        self.times: list[float] = []
        self.trainable = methods.parameter_counts(self.model, method)["trainable"]

    def step(self, x) -> float:
        t0 = CLOCK()
        loss = self.model(input_ids=x, labels=x).loss
        loss.backward()
        self.opt.step()
        for cb in self.callbacks:  # AdaLoRA budget / PriLoRA pruning run between step and zero_grad
            cb.step(self.step_no)
        self.opt.zero_grad(set_to_none=True)
        self.step_no += 1
        return CLOCK() - t0


def rasa_effective_rank(r, k, layers):
    k = method_registry.default_k(r) if k is None else k
    return r - k + layers * k


def memory_probe(label: str, args) -> dict:
    """Run in a subprocess: build, train 3 steps, report peak memory growth (MB)."""
    variant_args = _variant_specs(args)[label]
    model = base_model(args.layers, args.hidden)
    if torch.cuda.is_available():
        model = model.cuda()
    x = torch.randint(0, 2048, (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
    x = x.to(next(model.parameters()).device)
    v = Variant(label, model=model, **variant_args)
    v.step(x)  # first step allocates optimizer state and gradients; memory below covers steps 2-4 plus that state
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        for _ in range(3):
            v.step(x)
        peak = (torch.cuda.max_memory_allocated() - before) / 2**20
        kind = "cuda max_memory_allocated growth"
    else:
        import gc

        v.opt.zero_grad(set_to_none=True)
        gc.collect()
        before = heap_mb()
        with HeapSampler() as sampler:
            for _ in range(3):
                v.step(x)
        peak = sampler.peak - before
        kind = "peak C-heap growth (glibc mallinfo2) during training steps 2-4 over the state after step 1"
    return {"label": label, "peak_mb": peak, "kind": kind}


def _variant_specs(args):
    eff = rasa_effective_rank(args.r, None, args.layers)
    specs = {m: {"method": m, "r": args.r} for m in BENCH_METHODS}
    specs[f"lora@r_eff={eff}"] = {"method": "lora", "r": eff}
    specs["rasa-concat"] = {"method": "rasa", "r": args.r, "concat": True}
    return specs


def bench(args) -> dict:
    torch.manual_seed(0)
    base = base_model(args.layers, args.hidden)
    eff = rasa_effective_rank(args.r, None, args.layers)
    specs = _variant_specs(args)
    if args.only:
        keep = set(args.only.split(",")) | {"lora", f"lora@r_eff={eff}", "rasa", "rasa-concat"}
        specs = {k: v for k, v in specs.items() if k in keep}
    variants = [Variant(label, model=copy.deepcopy(base), total_steps=args.steps + 2, **spec)
                for label, spec in specs.items()]
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, 2048, (args.batch, args.seq), generator=gen) for _ in range(args.steps + 2)]
    for i, x in enumerate(batches):
        order = variants if i % 2 == 0 else variants[::-1]
        for v in order:
            dt = v.step(x)
            if i >= 2:  # two warm-up steps
                v.times.append(dt)
    med = {v.label: statistics.median(v.times) for v in variants}
    lora_r, lora_eff = med["lora"], med[f"lora@r_eff={eff}"]
    rows = [{"variant": v.label, "r": v.r, "trainable": v.trainable, "step_ms": 1e3 * med[v.label],
             "vs_lora_r": med[v.label] / lora_r, "vs_lora_r_eff": med[v.label] / lora_eff} for v in variants]

    # merged RaSA forward vs bare base forward (inference)
    rasa = next(v for v in variants if v.label == "rasa").model
    merged = copy.deepcopy(rasa).merge_and_unload().eval()
    bare = copy.deepcopy(base).eval()
    x = batches[0]
    fwd = {"merged": [], "base": []}
    with torch.inference_mode():
        for model in (merged, bare):
            model(input_ids=x)
        for i in range(args.forward_reps):
            for name, model in ((("merged", merged), ("base", bare)) if i % 2 == 0 else
                                (("base", bare), ("merged", merged))):
                t0 = CLOCK()
                model(input_ids=x)
                fwd[name].append(CLOCK() - t0)
    fwd_ms = {k: 1e3 * statistics.median(v) for k, v in fwd.items()}
    return {"config": vars(args) | {"rasa_effective_rank": eff, "threads": torch.get_num_threads()},
            "steps": rows, "merged_forward_ms": fwd_ms["merged"], "base_forward_ms": fwd_ms["base"],
            "merged_vs_base": fwd_ms["merged"] / fwd_ms["base"],
            "concat_vs_ours": med["rasa-concat"] / med["rasa"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per method (after 2 warm-up steps)")
    ap.add_argument("--forward-reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--wall", action="store_true", help="time wall-clock instead of process CPU time")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-method memory subprocesses")
    ap.add_argument("--only", default="", help="comma-separated extra variants besides lora, lora@r_eff, rasa, "
                                                "rasa-concat (default: all)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.perf_counter if args.wall else time.process_time
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args)))
        return 0

    res = bench(args)
    if not args.no_memory:
        mem = {}
        for label in [row["variant"] for row in res["steps"]]:
            cmd = [sys.executable, __file__, "--memory-probe", label] + [
                f"--{k}={getattr(args, k)}" for k in ("r", "layers", "hidden", "batch", "seq", "threads")]
            out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            mem[label] = json.loads(line[-1]) if line else {"peak_mb": float("nan"), "kind": out.stderr[-300:]}
        for row in res["steps"]:
            row["peak_mb"] = mem[row["variant"]]["peak_mb"]
        res["memory_kind"] = next(iter(mem.values()))["kind"]
        lora_mb = mem["lora"]["peak_mb"]
        for row in res["steps"]:
            row["mem_vs_lora_r"] = row["peak_mb"] / lora_mb if lora_mb else float("nan")

    c = res["config"]
    print(f"Llama {c['layers']} layers, hidden {c['hidden']}, batch {c['batch']}x{c['seq']} tokens, r={c['r']} "
          f"(RaSA k={max(c['r'] // 8, 1)}, effective rank {c['rasa_effective_rank']}), {c['threads']} threads, "
          f"median of {c['steps']} steps, {'wall-clock' if c['wall'] else 'process CPU'} time")
    head = f"{'variant':16} {'r':>4} {'trainable':>11} {'step ms':>9} {'/LoRA r':>8} {'/LoRA r_eff':>11}"
    if "memory_kind" in res:
        head += f" {'peak MB':>8} {'mem/LoRA':>8}"
    print(head)
    for row in res["steps"]:
        line = (f"{row['variant']:16} {row['r']:>4} {row['trainable']:>11,} {row['step_ms']:>9.1f} "
                f"{row['vs_lora_r']:>8.3f} {row['vs_lora_r_eff']:>11.3f}")
        if "peak_mb" in row:
            line += f" {row['peak_mb']:>8.1f} {row['mem_vs_lora_r']:>8.2f}"
        print(line)
    if "memory_kind" in res:
        print(f"(memory: {res['memory_kind']}, one subprocess per variant)")
    print(f"RaSA concatenate-per-forward / ours (training step): {res['concat_vs_ours']:.3f}")
    print(f"merged RaSA forward {res['merged_forward_ms']:.1f} ms vs base {res['base_forward_ms']:.1f} ms: "
          f"{res['merged_vs_base']:.3f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
