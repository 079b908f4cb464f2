"""The optimizer step under ZeRO-Offload: DeepSpeed's CPU Lion against lion_pytorch, in one run.

    PYTHONPATH=. python benchmarks/lion_step.py [--params 2e7] [--steps 5] [--threads N]

Both step the same fp32 parameters and gradients on the host, interleaved round-robin (medians
over the rounds, wall-clock). ``lion_pytorch`` runs on one thread, as each rank does under
torchrun's ``OMP_NUM_THREADS=1``; ``DeepSpeedCPULion`` on ``--threads`` (default: every CPU this
process may use, as rasa.optim gives a single process per node). Prints seconds per step per
10⁹ parameters and the ratio. The first run JIT-builds DeepSpeed's cpu_lion op (minutes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from lion_pytorch import Lion


def step_seconds(opt, threads: int) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    opt.step()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--params", type=float, default=2e7)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    a = p.parse_args()
    from deepspeed.ops.lion import DeepSpeedCPULion

    n = int(a.params)
    optimizers = {}
    for name, make in (("lion_pytorch", lambda w: Lion(w, lr=1e-4, betas=(0.9, 0.95),
                                                       decoupled_weight_decay=True)),
                       ("DeepSpeedCPULion", lambda w: DeepSpeedCPULion(w, lr=1e-4, betas=(0.9, 0.95)))):
        torch.manual_seed(0)
        weight = torch.nn.Parameter(torch.randn(n))
        weight.grad = torch.randn(n)
        optimizers[name] = make([weight])
    threads = {"lion_pytorch": 1, "DeepSpeedCPULion": a.threads}
    times = {name: [] for name in optimizers}
    for _ in range(a.steps):
        for name, opt in optimizers.items():
            times[name].append(step_seconds(opt, threads[name]))
    per_b = {name: statistics.median(t) / n * 1e9 for name, t in times.items()}
    for name, s in per_b.items():
        print(f"{name:18s} {s:8.2f} s per step per 1e9 parameters")
    print(f"lion_pytorch (1 thread) / DeepSpeedCPULion ({a.threads} threads): "
          f"{per_b['lion_pytorch'] / per_b['DeepSpeedCPULion']:.1f}x")


if __name__ == "__main__":
    main()
