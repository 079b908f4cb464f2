"""Benchmark: the RaSA reconstruction solver (rasa.recon.rasa_error) against the straightforward
dense implementation (tests/recon_dense_reference.py: full SVDs every iteration, explicit targets
and products), on the same inputs, in one run.

    python benchmarks/recon.py                        # 32 × (1024 × 1024), r=8, k=1, 3 iterations
    python benchmarks/recon.py --layers 32 --rows 4096 --cols 14336 --device cuda --dtype float32 --skip-dense

Inputs resemble fine-tuning updates: per layer a low-rank signal with a power-law spectrum, a
component shared across layers (so RaSA has something to find) and dense Gaussian noise.
Prints time per iteration of both, the ratio, both final errors and their relative difference,
and the cost of one iteration of the fast solver (for the GPU estimate).

Measured (default arguments, float64, 2 CPU cores shared with other jobs, so times are noisy; the
dense run takes ~13 minutes): fast 0.74 s/iteration (start 11.7 s), dense 201.7 s/iteration
(start 170 s): 271x per iteration, 56x end to end; final errors 50.29793629 vs 50.2979363
(relative difference 2.6e-10); LoRA 69.66597323. The fast solver made 319 product columns per
iteration (21.4 GFLOP on the M_i).

GPU estimate for 32 x (4096 x 14336), r=8, k=1 (not measured: no GPU in this session): an
iteration makes ~19 passes over the stacked updates (2 for B_S/A_S, 1 + 2·8 for the private step
at most), each a skinny product of width 17-32, i.e. ~1.2 TFLOP but only 4-8 flop per byte in
float64, far under an H200's ~14 flop/byte balance point: memory-bound. 19 passes x 15 GB (float64)
≈ 285 GB at ~4 TB/s ≈ 70 ms per iteration (~35 ms in float32), plus a few ms of small batched
QR/eigh per step; the start (one 4096 x 4096 Gram eigen-decomposition per layer) is ~30-60 s per
module type, paid once per module thanks to rasa.recon.spectra. 70B (80 x 8192 x 28672) is 150 GB
in float64: use --dtype float32 (75 GB) there.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the dense reference lives with the tests

from rasa.recon import lora_error, rasa_error  # noqa: E402

from recon_dense_reference import rasa_error_dense  # noqa: E402


def make_updates(L: int, b: int, a: int, seed: int = 0, rank: int = 64, shared_rank: int = 16,
                 noise: float = 0.02, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    spec = torch.arange(1, rank + 1, dtype=torch.float64) ** -0.7       # power-law spectrum
    us = torch.randn(b, shared_rank, generator=g, dtype=torch.float64) / math.sqrt(b)
    vs = torch.randn(shared_rank, a, generator=g, dtype=torch.float64) / math.sqrt(a)
    mats = []
    for _ in range(L):
        u = torch.randn(b, rank, generator=g, dtype=torch.float64) / math.sqrt(b)
        v = torch.randn(rank, a, generator=g, dtype=torch.float64) / math.sqrt(a)
        w = torch.randn(shared_rank, generator=g, dtype=torch.float64) * 0.5
        m = (u * spec) @ v + (us * w) @ vs
        m += noise * torch.randn(b, a, generator=g, dtype=torch.float64) / math.sqrt(max(a, b))
        mats.append(m.to(device=device, dtype=dtype))
    return mats


def flops_per_iteration(L, b, a, r, k, oversample=10, power_steps=1):
    """Multiply-adds × 2 touching the M_i in one iteration of rasa_error: M Aᵀ and Bᵀ M (width K),
    and the private step: (1 + 2·power_steps) products of width s = r−k+oversample."""
    K, s = L * k, min(r - k + oversample, b, a)
    width = 2 * K + (1 + 2 * power_steps) * s if r - k > 0 else 2 * K
    return 2.0 * L * b * a * width, width


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--rows", type=int, default=1024)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--r", type=int, default=8)
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--init", default="theorem", choices=["theorem", "paper"])
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    p.add_argument("--skip-dense", action="store_true", help="time only the fast solver (paper scale)")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    mats = make_updates(args.layers, args.rows, args.cols, dtype=dtype, device=args.device)
    L, b, a = args.layers, args.rows, args.cols
    out = {"layers": L, "rows": b, "cols": a, "r": args.r, "k": args.k, "iters": args.iters,
           "init": args.init, "dtype": args.dtype, "device": args.device,
           "torch_threads": torch.get_num_threads()}

    _sync(args.device)
    t0 = time.perf_counter()
    le = lora_error(mats, args.r)
    _sync(args.device)
    out["lora_error"], out["lora_s"] = le, time.perf_counter() - t0

    def timed(fn, **kw):
        """Run one solver; wall-clock stamps after the start and after every iteration."""
        stamps = []
        _sync(args.device)
        t0 = time.perf_counter()

        def cb(it, err):
            _sync(args.device)
            stamps.append(time.perf_counter() - t0)

        res = fn(mats, args.r, args.k, args.iters, init=args.init, dtype=dtype, callback=cb, **kw)
        per_iter = [stamps[j + 1] - stamps[j] for j in range(len(stamps) - 1)]
        return res, stamps[0], per_iter, stamps[-1]

    (e_fast, h_fast, st), t_init, it_fast, t_fast = timed(rasa_error, return_state=True)
    out.update(fast_total_s=t_fast, fast_init_s=t_init, fast_iter_s=it_fast,
               fast_per_iter_s=sum(it_fast) / max(len(it_fast), 1),
               fast_error=e_fast, fast_history=h_fast)
    width = st["big_product_width"] / max(args.iters, 1)
    fl = 2.0 * L * b * a * width
    fl_nom, _ = flops_per_iteration(L, b, a, args.r, args.k)
    out.update(fast_width_per_iter=width, fast_flop_per_iter=fl,
               fast_flop_per_iter_nominal_1_power_step=fl_nom)

    if not args.skip_dense:
        (e_dense, h_dense), t_dinit, it_dense, t_dense = timed(rasa_error_dense)
        out.update(dense_total_s=t_dense, dense_init_s=t_dinit, dense_iter_s=it_dense,
                   dense_per_iter_s=sum(it_dense) / max(len(it_dense), 1),
                   dense_error=e_dense, dense_history=h_dense)
        out.update(ratio_total=t_dense / t_fast,
                   ratio_per_iter=(out["dense_per_iter_s"] / out["fast_per_iter_s"]
                                   if out["fast_per_iter_s"] > 0 else float("inf")),
                   rel_error_diff=abs(e_fast - e_dense) / max(abs(e_dense), 1e-300))

    print(f"{L} x ({b} x {a}), r={args.r}, k={args.k}, {args.iters} iterations, init={args.init}, "
          f"{args.dtype} on {args.device}, {out['torch_threads']} torch threads")
    print(f"LoRA error           {le:.10g}   ({out['lora_s']:.2f} s)")
    print(f"fast  : start {t_init:.2f} s, {out['fast_per_iter_s']:.3f} s/iteration, total {t_fast:.2f} s, "
          f"final error {e_fast:.10g}")
    print(f"        {fl / 1e9:.2f} GFLOP/iteration touching the M_i (mean product width {width:.0f}; "
          f"{fl_nom / 1e9:.2f} with one power step)")
    if not args.skip_dense:
        print(f"dense : start {t_dinit:.2f} s, {out['dense_per_iter_s']:.3f} s/iteration, total {t_dense:.2f} s, "
              f"final error {e_dense:.10g}")
        print(f"ratio : {out['ratio_per_iter']:.1f}x per iteration, {out['ratio_total']:.1f}x end to end; "
              f"relative difference of final errors {out['rel_error_diff']:.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
