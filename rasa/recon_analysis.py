"""Figures 2 and 3 of the paper (§3.2) as one long CSV: LoRA's and RaSA's minimum reconstruction
error of the fine-tuning updates ``ΔW_i = W_finetuned − W_base``, per linear-module type.

    python -m rasa.recon_analysis --base work/models/tiny-llama --finetuned work/runs/<fft>/weights/epoch-2 \\
        --model-name tiny-llama --out results/recon/recon.csv

Inputs: two Hugging Face checkpoints on disk in safetensors (a single ``model.safetensors`` or a
sharded one with ``model.safetensors.index.json``). Tensors are read one at a time with
``safe_open``: only the ``L`` updates of the module type being analysed are ever in memory
(32 × 4096 × 14336 in float64 is 15 GB for Llama-3.1-8B's MLP; use ``--dtype float32`` to halve it).
A module type is every weight ``…layers.<i>.<…>.<module>.weight`` of the checkpoint.

Output columns: ``model,module,analysis,r,k,method,init,iteration,error``.

* ``analysis=figure2``: for every module, RaSA's error after every coordinate-descent iteration
  (``iteration`` 0 … ``--fig2-iters``; 0 is the start) with ``init=paper`` and with
  ``init=theorem`` (see :mod:`rasa.recon`), and one LoRA row (``method=lora``, ``k=0``,
  ``init=none``, ``iteration=0``).
* ``analysis=figure3``: for every module and every ``r`` in ``--fig3-ranks``: one LoRA row, and
  for every ``k`` in ``--fig3-ks`` with ``k ≤ r`` RaSA's converged error (``init=theorem``,
  ``iteration`` = the number of iterations run, at most ``--fig3-iters``, fewer when an iteration
  improves by less than ``--fig3-tol`` relatively). ``k = 0`` is LoRA by definition and is written
  from the Theorem-3.1 start (identical to the LoRA row).

Shapes and ranks: ``k > r`` is not a RaSA configuration and is skipped (logged). A rank at or above
``min(out, in)`` is kept: LoRA then reconstructs every update exactly (error 0) and so does RaSA,
and the rows say so (error 0) rather than disappear, so averages over modules stay comparable
across ``r``. The pool ``L·k`` may exceed ``min(out, in)`` (the least-squares updates are
minimum-norm solves, valid for any size).

Errors are written with ``%.10g``; the run is deterministic (fixed ``--seed``): byte-identical on
one machine with one ``--threads`` setting, within ~1e-9 relative across thread counts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from rasa.io import write_csv_atomic
from rasa.recon import lora_error_from_spectra, rasa_error, spectra

COLUMNS = ["model", "module", "analysis", "r", "k", "method", "init", "iteration", "error"]
DEFAULT_MODULES = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


# ----------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------

class Checkpoint:
    """Lazy tensor access to a safetensors checkpoint folder (single file or sharded)."""

    def __init__(self, path: str | Path):
        from safetensors import safe_open

        self._safe_open = safe_open
        self.path = Path(path)
        index = self.path / "model.safetensors.index.json"
        self.where: dict[str, Path] = {}
        if index.is_file():
            wm = json.loads(index.read_text())["weight_map"]
            self.where = {k: self.path / f for k, f in wm.items()}
        else:
            files = sorted(self.path.glob("*.safetensors"))
            if not files:
                raise FileNotFoundError(f"no *.safetensors in {self.path}")
            for f in files:
                with safe_open(str(f), framework="pt", device="cpu") as h:
                    for k in h.keys():
                        self.where[k] = f

    def keys(self):
        return self.where.keys()

    def get(self, key: str) -> torch.Tensor:
        with self._safe_open(str(self.where[key]), framework="pt", device="cpu") as h:
            return h.get_tensor(key)


def module_layers(keys, module: str) -> dict[str, dict[int, str]]:
    """``{pattern: {layer: key}}`` for the weights of ``module``; the pattern is the key with the
    layer index replaced by ``{}`` (one pattern per module type in a dense Llama/Mistral model)."""
    rx = re.compile(r"^(.*?layers\.)(\d+)(\..*\b" + re.escape(module) + r")\.weight$")
    out: dict[str, dict[int, str]] = defaultdict(dict)
    for key in keys:
        m = rx.match(key)
        if m:
            out[m.group(1) + "{}" + m.group(3)][int(m.group(2))] = key
    return dict(out)


def load_updates(base: Checkpoint, ft: Checkpoint, keys_by_layer: dict[int, str], dtype, device):
    """``(L, out, in)`` stack of ΔW_i = W_ft − W_base in ``dtype`` on ``device`` (difference taken
    in float64, one layer at a time)."""
    layers = sorted(keys_by_layer)
    out = None
    for j, li in enumerate(layers):
        key = keys_by_layer[li]
        if key not in ft.where:
            raise KeyError(f"{key} is in the base checkpoint but not in the fine-tuned one")
        w0 = base.get(key).to(torch.float64)
        w1 = ft.get(key).to(torch.float64)
        if w0.shape != w1.shape:
            raise ValueError(f"{key}: shapes differ ({tuple(w0.shape)} vs {tuple(w1.shape)})")
        if out is None:
            out = torch.empty((len(layers),) + tuple(w0.shape), dtype=dtype, device=device)
        out[j].copy_(w1 - w0)
        del w0, w1
    return out


# ----------------------------------------------------------------------------------------------
# analysis
# ----------------------------------------------------------------------------------------------

def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip() != ""]


def fmt(x: float) -> str:
    return f"{x:.10g}"


def analyse_module(model: str, module: str, M: torch.Tensor, args, log) -> list[list]:
    rows = []
    L, b, a = M.shape
    dtype = M.dtype
    fig2_r, fig2_k = args.fig2_r, args.fig2_k
    ranks, ks = _ints(args.fig3_ranks), _ints(args.fig3_ks)
    rmax = max([fig2_r] + ranks) + args.oversample
    t0 = time.perf_counter()
    spec = spectra(M, rmax, dtype=dtype)
    log(f"  {module}: {L} x ({b} x {a}) spectra in {time.perf_counter() - t0:.1f}s")
    common = {"dtype": dtype, "seed": args.seed, "spectra": spec, "oversample": args.oversample}

    def row(analysis, r, k, method, init, it, err):
        return [model, module, analysis, r, k, method, init, it, fmt(err)]

    # ---- Figure 2
    if args.fig2_iters >= 0 and fig2_k <= fig2_r:
        rows.append(row("figure2", fig2_r, 0, "lora", "none", 0, lora_error_from_spectra(spec, fig2_r)))
        for init in ("paper", "theorem"):
            t0 = time.perf_counter()
            _, hist = rasa_error(M, fig2_r, fig2_k, args.fig2_iters, init=init, tol=None, **common)
            log(f"  {module}: figure2 {init} r={fig2_r} k={fig2_k} {len(hist) - 1} it "
                f"{hist[0]:.6g} -> {hist[-1]:.6g} ({time.perf_counter() - t0:.1f}s)")
            rows += [row("figure2", fig2_r, fig2_k, "rasa", init, it, e) for it, e in enumerate(hist)]
    # ---- Figure 3
    for r in ranks:
        le = lora_error_from_spectra(spec, r)
        rows.append(row("figure3", r, 0, "lora", "none", 0, le))
        for k in ks:
            if k > r:
                log(f"  {module}: figure3 r={r} k={k} skipped (k > r)")
                continue
            iters = 0 if k == 0 else args.fig3_iters
            t0 = time.perf_counter()
            e, hist = rasa_error(M, r, k, iters, init="theorem", tol=args.fig3_tol, **common)
            log(f"  {module}: figure3 r={r} k={k} {len(hist) - 1} it {e:.6g} (lora {le:.6g}, "
                f"{time.perf_counter() - t0:.1f}s)")
            rows.append(row("figure3", r, k, "rasa", "theorem", len(hist) - 1, e))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m rasa.recon_analysis", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="base checkpoint folder (safetensors)")
    p.add_argument("--finetuned", required=True, help="fully fine-tuned checkpoint folder (safetensors)")
    p.add_argument("--model-name", required=True, help="value of the `model` column")
    p.add_argument("--modules", default=DEFAULT_MODULES, help="comma-separated module names")
    p.add_argument("--fig2-r", type=int, default=8)
    p.add_argument("--fig2-k", type=int, default=1)
    p.add_argument("--fig2-iters", type=int, default=50)
    p.add_argument("--fig3-ranks", default="8,16,32")
    p.add_argument("--fig3-ks", default="0,1,2,4,6,8")
    p.add_argument("--fig3-iters", type=int, default=100, help="maximum iterations per (r, k)")
    p.add_argument("--fig3-tol", type=float, default=1e-7,
                   help="stop when an iteration improves the error by less than this fraction")
    p.add_argument("--oversample", type=int, default=10, help="extra width of the private-step subspace")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                   help="dtype in which the updates are held (bookkeeping is float64 regardless)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:0, …")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: torch's default; 1 is fastest for the tiny model)")
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    base, ft = Checkpoint(args.base), Checkpoint(args.finetuned)
    rows: list[list] = []
    for module in [m.strip() for m in args.modules.split(",") if m.strip()]:
        groups = module_layers(base.keys(), module)
        if not groups:
            raise SystemExit(f"module {module!r}: no weight matches …layers.<i>.….{module}.weight in {args.base}")
        for pattern, keys_by_layer in sorted(groups.items()):
            name = module if len(groups) == 1 else pattern.split("{}.", 1)[-1]
            t0 = time.perf_counter()
            M = load_updates(base, ft, keys_by_layer, dtype, args.device)
            log(f"{name}: loaded {len(keys_by_layer)} updates in {time.perf_counter() - t0:.1f}s")
            rows += analyse_module(args.model_name, name, M, args, log)
            del M
            if str(args.device).startswith("cuda"):
                torch.cuda.empty_cache()
    out = Path(args.out)
    write_csv_atomic(out, [dict(zip(COLUMNS, row)) for row in rows], columns=COLUMNS)
    log(f"wrote {len(rows)} rows to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
