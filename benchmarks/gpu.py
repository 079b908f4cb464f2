"""What the adapters cost on a GPU at the paper's shapes: one command, no download.

    python benchmarks/gpu.py                          # one H100/H200-class GPU, bf16, under 8 minutes
    python benchmarks/gpu.py --device cpu --small     # tiny shapes, float32: checks the script (CI)

Models are built from their configurations with random weights (nothing is downloaded): the
Llama-3.1-8B shape of :mod:`rasa.param_counts` at full depth (32 layers by default, ``--layers``:
RaSA's shared pool holds L·k ranks, so its cost depends on the layer count, and the 8B model fits
one GPU in bf16) and one Mixtral-8x7B layer (8 experts, top 2; attention adapted, as in
``configs/paper.yaml``). Adapters are applied through :func:`rasa.methods.apply_method`, and the
training steps run through ``benchmarks/adapters.py``'s ``Variant`` (forward, backward, AdamW,
zero_grad) with gradient checkpointing as in the paper's recipe. It measures

* **training**: step time and peak memory of LoRA, RaSA, MoRA and VeRA at r = 8/16/32 (and VeRA
  at the paper's r = 1024), PEFT LoRA at RaSA's effective rank r − k + L·k, and the ratios of
  RaSA to LoRA at the same r and at the effective rank;
* **inference**: forward time of the base model, of LoRA and RaSA (r = 8) unmerged (how the
  pipeline evaluates by default) and merged (``merge_and_unload``), each against the base model;
  HF ``generate`` tokens/s at the authors' batch sizes (8, greedy, for MATH; 10, sampling at
  T = 0.2, top-p 0.95, for HumanEval+), every sequence forced to the same length;
* **reconstruction**: the §3 solver (:func:`rasa.recon.rasa_error`, via ``benchmarks/recon.py``)
  on one module-type stack of 32 × (4096 × 14336) in float32.

It writes ``gpu.json`` and ``gpu.md`` (GPU name, library versions) into ``--out-dir``
(default ``results/benchmarks``; ``--small`` writes ``gpu-small.*`` so that a CI run never
overwrites measured figures). Times on the GPU are wall-clock with ``torch.cuda.synchronize``;
peak memory is ``torch.cuda.max_memory_allocated`` (weights included). A section that would start
after ``--budget-s`` seconds is skipped and listed under ``skipped``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gc
import importlib.metadata
import importlib.util
import json
import math
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

REQUIRED = ("torch", "transformers", "peft")
OPTIONAL = ("accelerate", "pandas")
METHODS = ("lora", "rasa", "mora", "vera")
MIXTRAL = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
           "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000,
           "max_position_embeddings": 32768, "rope_theta": 1e6, "tie_word_embeddings": False}
SMALL = {"hidden_size": 64, "intermediate_size": 224, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 512, "max_position_embeddings": 512}
#: the authors' evaluation batches and decoding (configs/paper.yaml benchmarks)
GENERATE = (("math", 8, {"do_sample": False}),
            ("humanevalplus", 10, {"do_sample": True, "temperature": 0.2, "top_p": 0.95}))


def library_versions() -> dict:
    """Versions of the libraries the benchmark uses; exits with a clear message if a required one is missing."""
    found = {}
    for name in REQUIRED + OPTIONAL:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    missing = [n for n in REQUIRED if found[n] is None]
    print("libraries: " + ", ".join(f"{n} {v or 'absent'}" for n, v in found.items()))
    if missing:
        raise SystemExit(f"benchmarks/gpu.py needs {', '.join(missing)}; install them (envs/requirements-cpu.txt "
                         "pins the versions this repository is tested with).")
    return found


def _load(name: str):
    """A sibling benchmark script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


adapters_bench = _load("adapters")
recon_bench = _load("recon")


class Bench:
    """Settings, device helpers, the time budget and the results of one benchmark run."""

    def __init__(self, args):
        import torch

        self.args, self.torch = args, torch
        self.cuda = args.device.startswith("cuda")
        self.dtype = torch.bfloat16 if self.cuda else torch.float32
        self.t0 = time.perf_counter()
        self.skipped: list[str] = []

    def clock(self) -> float:
        """Wall-clock seconds, after the device has finished its queued work."""
        if self.cuda:
            self.torch.cuda.synchronize()
        return time.perf_counter()

    def within_budget(self, what: str) -> bool:
        if self.args.budget_s is not None and time.perf_counter() - self.t0 > self.args.budget_s:
            self.skipped.append(what)
            print(f"  skipped (time budget {self.args.budget_s:.0f} s spent): {what}")
            return False
        return True

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()

    def build(self, model_type: str, shape: dict, layers: int):
        """A model with random weights at ``shape`` (overridden by the tiny shape in --small mode)."""
        from transformers import AutoConfig, AutoModelForCausalLM

        kwargs = dict(shape, **SMALL) if self.args.small else dict(shape)
        config = AutoConfig.for_model(model_type, **dict(kwargs, num_hidden_layers=layers))
        self.torch.manual_seed(0)
        with self.torch.device(self.args.device):
            model = AutoModelForCausalLM.from_config(config, dtype=self.dtype)
        return model

    def tokens(self, batch: int, seq: int, vocab: int):
        g = self.torch.Generator().manual_seed(1)
        return self.torch.randint(0, vocab, (batch, seq), generator=g).to(self.args.device)

    def peak_memory(self, run):
        """(peak MB, what it means) while ``run()`` executes."""
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()
            run()
            return self.torch.cuda.max_memory_allocated() / 2**20, "cuda max_memory_allocated (weights included)"
        with adapters_bench.HeapSampler() as sampler:
            before = adapters_bench.heap_mb()
            run()
        return sampler.peak - before, "peak C-heap growth during the timed steps"


def llama_shape() -> tuple[str, dict]:
    from rasa.param_counts import MODELS

    return MODELS["Llama-3.1-8B"]


def paper_targets(model: str) -> list[str]:
    """target_modules of a model in configs/paper.yaml (the study's own list)."""
    import yaml

    with open(HERE.parent / "configs" / "paper.yaml") as fh:
        return yaml.safe_load(fh)["models"][model]["target_modules"]


def training_variants(layers: int, ranks: list[int]) -> list[tuple[str, str, int]]:
    """(label, method, r): every method at every rank, VeRA at the paper's 1024, LoRA at RaSA's effective ranks."""
    out = [(f"{m}-r{r}", m, r) for r in ranks for m in METHODS]
    out.append(("vera-r1024", "vera", 1024))
    for r in ranks:
        eff = adapters_bench.rasa_effective_rank(r, None, layers)
        if eff not in ranks:
            out.append((f"lora-r{eff}", "lora", eff))
    return list(dict.fromkeys(out))


def train_section(b: Bench, name: str, model_type: str, shape: dict, layers: int, targets: list[str]) -> list[dict]:
    a = b.args
    rows = []
    for label, method, r in training_variants(layers, a.ranks):
        if not b.within_budget(f"training {name} {label}"):
            continue
        model = b.build(model_type, shape, layers)
        model.config.use_cache = False
        with warnings.catch_warnings():  # renamed activation_checkpointing_enable in newer transformers
            warnings.simplefilter("ignore", FutureWarning)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        variant = adapters_bench.Variant(label, method, r, model, total_steps=a.steps + a.warmup, targets=targets)
        x = b.tokens(a.batch, a.seq, model.config.vocab_size)
        for _ in range(a.warmup):
            variant.step(x)

        def timed_steps(variant=variant):
            variant.times = [variant.step(x) for _ in range(a.steps)]

        peak, kind = b.peak_memory(timed_steps)
        rows.append({"model": name, "variant": label, "method": method, "r": r, "layers": layers,
                     "trainable": variant.trainable, "step_ms": 1e3 * statistics.median(variant.times),
                     "peak_mb": peak, "memory": kind})
        print(f"  {name:12} {label:12} step {rows[-1]['step_ms']:9.1f} ms  peak {peak:9.1f} MB")
        del variant, model
        b.free()
    _ratios(rows, layers)
    return rows


def _ratios(rows: list[dict], layers: int) -> None:
    """RaSA (and every method) against LoRA at the same r; RaSA also against LoRA at its effective rank."""
    lora = {row["r"]: row for row in rows if row["method"] == "lora"}
    for row in rows:
        base = lora.get(row["r"])
        if base:
            row["time_vs_lora_r"] = row["step_ms"] / base["step_ms"]
            row["mem_vs_lora_r"] = row["peak_mb"] / base["peak_mb"] if base["peak_mb"] > 0 else None
        if row["method"] == "rasa":
            eff = lora.get(adapters_bench.rasa_effective_rank(row["r"], None, layers))
            if eff:
                row["r_eff"] = eff["r"]
                row["time_vs_lora_r_eff"] = row["step_ms"] / eff["step_ms"]
                row["mem_vs_lora_r_eff"] = row["peak_mb"] / eff["peak_mb"] if eff["peak_mb"] > 0 else None


def _median_round_robin(b: Bench, fns: dict, reps: int) -> dict:
    """Median seconds of each zero-argument function, run in alternating order after one warm-up call each."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for i in range(reps):
        for k in (list(fns) if i % 2 == 0 else list(fns)[::-1]):
            t = b.clock()
            fns[k]()
            times[k].append(b.clock() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def inference_section(b: Bench, layers: int, targets: list[str]) -> dict:
    from rasa import methods

    a, torch = b.args, b.torch
    model_type, shape = llama_shape()
    base = b.build(model_type, shape, layers).eval()
    vocab = base.config.vocab_size
    x = b.tokens(a.batch_fwd, a.seq, vocab)
    forward, generate = [], []
    r = a.ranks[0]
    for method in ("base", "lora", "rasa"):
        if not b.within_budget(f"inference {method}"):
            continue
        model = base if method == "base" else methods.apply_method(
            copy.deepcopy(base), method, r, k=None, alpha=16.0, dropout=0.05, target_modules=targets).eval()
        label = "base" if method == "base" else f"{method}-r{r}"
        with torch.inference_mode():
            models = {"base": base} if method == "base" else {"base": base, "unmerged": model}
            if method != "base":
                models["merged"] = copy.deepcopy(model).merge_and_unload().eval()
            med = _median_round_robin(b, {k: (lambda m=m: m(input_ids=x)) for k, m in models.items()}, a.reps)
        for kind, sec in med.items():
            if method != "base" and kind == "base":
                continue
            forward.append({"variant": label if kind == "base" else f"{label} {kind}", "ms": 1e3 * sec,
                            "vs_base": sec / med["base"], "tokens_per_s": a.batch_fwd * a.seq / sec})
        del models  # frees the merged copy now, the unmerged one with ``model`` below
        for bench_name, batch, decoding in GENERATE:
            if not b.within_budget(f"generate {bench_name} {label}"):
                continue
            prompt = b.tokens(batch, a.prompt_len, vocab)
            kwargs = dict(max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, pad_token_id=0, **decoding)
            with torch.inference_mode():
                model.generate(input_ids=prompt[:, :8], attention_mask=torch.ones_like(prompt[:, :8]),
                               max_new_tokens=4, min_new_tokens=4, pad_token_id=0, **decoding)  # warm-up
                t = b.clock()
                out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), **kwargs)
                sec = b.clock() - t
            new = (out.shape[1] - prompt.shape[1]) * batch
            generate.append({"benchmark": bench_name, "batch": batch, "variant": label, "layers": layers,
                             "prompt_tokens": a.prompt_len, "new_tokens": a.new_tokens, "seconds": sec,
                             "tokens_per_s": new / sec, "ms_per_step": 1e3 * sec / a.new_tokens})
            print(f"  generate {bench_name:13} batch {batch:2} {label:8} {generate[-1]['tokens_per_s']:9.1f} tokens/s")
        if model is not base:
            del model
        b.free()
    del base
    b.free()
    return {"forward": forward, "generate": generate, "batch": a.batch_fwd, "seq": a.seq}


def recon_section(b: Bench) -> dict | None:
    if not b.within_budget("reconstruction solver"):
        return None
    L, rows, cols = (4, 64, 224) if b.args.small else (32, 4096, 14336)
    argv = ["--layers", str(L), "--rows", str(rows), "--cols", str(cols), "--r", "8", "--k", "1",
            "--iters", str(b.args.recon_iters), "--device", b.args.device, "--skip-dense",
            "--dtype", "float64" if b.args.small else "float32"]
    out = recon_bench.main(argv)
    b.free()
    return out


def markdown(res: dict) -> str:
    lines = [f"# GPU benchmark ({res['mode']} mode)", "",
             f"- device: {res['device_name']} ({res['device']}), {res['dtype']}",
             "- libraries: " + ", ".join(f"{k} {v or 'absent'}" for k, v in res["versions"].items()),
             f"- python {res['python']}, started {res['started']}, {res['wall_s']:.0f} s in all",
             f"- training: batch {res['settings']['batch']} x {res['settings']['seq']} tokens, "
             f"median of {res['settings']['steps']} steps after {res['settings']['warmup']} warm-up, "
             "gradient checkpointing, AdamW", ""]
    lines += ["## Training step", "", "| model | variant | trainable | step ms | /LoRA r | /LoRA r_eff | peak MB | "
              "mem /LoRA r |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    fmt = lambda v, f="{:.3f}": "" if v is None else f.format(v)  # noqa: E731
    for row in res["training"]:
        lines.append(f"| {row['model']} | {row['variant']} | {row['trainable']:,} | {row['step_ms']:.1f} | "
                     f"{fmt(row.get('time_vs_lora_r'))} | {fmt(row.get('time_vs_lora_r_eff'))} | "
                     f"{row['peak_mb']:.0f} | {fmt(row.get('mem_vs_lora_r'))} |")
    inf = res.get("inference") or {}
    if inf.get("forward"):
        lines += ["", f"## Forward (batch {inf['batch']} x {inf['seq']} tokens, inference)", "",
                  "| variant | ms | / base |", "|---|---:|---:|"]
        lines += [f"| {row['variant']} | {row['ms']:.1f} | {row['vs_base']:.3f} |" for row in inf["forward"]]
    if inf.get("generate"):
        lines += ["", "## HF generate", "", "| benchmark | batch | variant | new tokens | tokens/s | ms/step |",
                  "|---|---:|---|---:|---:|---:|"]
        lines += [f"| {g['benchmark']} | {g['batch']} | {g['variant']} | {g['new_tokens']} | "
                  f"{g['tokens_per_s']:.1f} | {g['ms_per_step']:.1f} |" for g in inf["generate"]]
    rec = res.get("recon")
    if rec:
        lines += ["", "## Reconstruction solver (paper §3)", "",
                  f"{rec['layers']} x ({rec['rows']} x {rec['cols']}), r={rec['r']}, k={rec['k']}, {rec['dtype']}: "
                  f"start {rec['fast_init_s']:.2f} s, {rec['fast_per_iter_s']:.3f} s/iteration "
                  f"({rec['iters']} iterations), LoRA error {rec['lora_s']:.2f} s"]
    if res["skipped"]:
        lines += ["", "Skipped (time budget): " + "; ".join(res["skipped"])]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--small", action="store_true", help="tiny shapes and few steps: checks the script in seconds")
    ap.add_argument("--out-dir", default="results/benchmarks")
    ap.add_argument("--layers", type=int, default=None, help="Llama-3.1-8B layers (default 32; --small: 2)")
    ap.add_argument("--ranks", type=lambda s: [int(x) for x in s.split(",")], default=[8, 16, 32])
    ap.add_argument("--batch", type=int, default=None, help="training micro batch (default 2; --small: 2)")
    ap.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 1024; --small: 32)")
    ap.add_argument("--steps", type=int, default=None, help="timed training steps (default 5; --small: 2)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 2; --small: 1)")
    ap.add_argument("--batch-fwd", type=int, default=8, help="batch of the forward comparison")
    ap.add_argument("--reps", type=int, default=None, help="forward repetitions (default 10; --small: 3)")
    ap.add_argument("--prompt-len", type=int, default=None, help="generate: prompt tokens (default 256; --small 8)")
    ap.add_argument("--new-tokens", type=int, default=None, help="generate: new tokens (default 256; --small 8)")
    ap.add_argument("--recon-iters", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=None,
                    help="skip sections that would start after this many seconds (default 360, which keeps a full "
                         "run under 8 minutes; --small: none)")
    args = ap.parse_args(argv)
    small = args.small
    defaults = {"layers": 2 if small else 32, "batch": 2, "seq": 32 if small else 1024, "steps": 2 if small else 5,
                "warmup": 1 if small else 2, "reps": 3 if small else 10, "prompt_len": 8 if small else 256,
                "new_tokens": 8 if small else 256, "budget_s": None if small else 360.0}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.batch_fwd < 1 or min(args.ranks) < 1 or args.steps < 1:
        raise SystemExit("--batch-fwd, --ranks and --steps must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    versions = library_versions()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no GPU here (torch.cuda.is_available() is False); "
                         "use --device cpu --small to check the script on a CPU.")
    b = Bench(args)
    adapters_bench.CLOCK = b.clock  # Variant.step times with wall-clock after a device synchronize
    if not b.cuda:
        torch.set_num_threads(1)  # tiny shapes: threads only add contention
    device_name = torch.cuda.get_device_name(args.device) if b.cuda else platform.processor() or "cpu"
    print(f"device: {device_name}; mode: {'small' if args.small else 'full'}")
    res = {"mode": "small" if args.small else "full", "device": args.device, "device_name": device_name,
           "dtype": str(b.dtype).replace("torch.", ""), "versions": versions, "python": platform.python_version(),
           "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "settings": {k: getattr(args, k) for k in ("layers", "ranks", "batch", "seq", "steps", "warmup",
                                                      "batch_fwd", "reps", "prompt_len", "new_tokens",
                                                      "recon_iters", "budget_s")}}
    llama_type, llama = llama_shape()
    llama_targets, mixtral_targets = paper_targets("llama-3.1-8b"), paper_targets("mixtral-8x7b")
    # most wanted first: what a budget cut skips is the end (Mixtral, the solver)
    print("training steps")
    res["training"] = train_section(b, "llama-3.1-8b", llama_type, llama, args.layers, llama_targets)
    print("inference")
    res["inference"] = inference_section(b, args.layers, llama_targets)
    res["training"] += train_section(b, "mixtral-8x7b", "mixtral", MIXTRAL, 1, mixtral_targets)
    print("reconstruction solver")
    res["recon"] = recon_section(b)
    res["skipped"] = b.skipped
    res["wall_s"] = time.perf_counter() - b.t0
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu-small" if args.small else "gpu"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=_finite))
    (out / f"{stem}.md").write_text(markdown(res))
    print(f"wrote {out / stem}.json and .md ({res['wall_s']:.0f} s)")
    return 0


def _finite(value):
    """JSON fallback for numpy/torch scalars."""
    value = float(value)
    return value if math.isfinite(value) else None


if __name__ == "__main__":
    sys.exit(main())
