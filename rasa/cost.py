"""GPU-hours of the study a config describes, per rule and in total, before anything is submitted.

    python -m rasa.cost --configfile configs/paper.yaml [--gpu-json results/benchmarks/gpu.json]
                        [--out results/cost.csv] [--fill 1.0] [--speedup 1.0]

The jobs are the study's own (:func:`rasa.study.all_runs`, :func:`rasa.study.all_evaluations`);
every row says where its number comes from.

Training (rule ``train``), GPU-hours of one run, in A100-40G hours (``--speedup``: how much faster
the cluster's GPUs are than the paper's):

1. the paper's Time column (:func:`rasa.paper_time.train_hours`, wall-clock on 1 × 8 A100-40G)
   × 8 GPUs × epochs / 8 × training fraction;
2. where the paper has no time at this rank (Figure 6's r = 4): its time at the nearest rank of the
   same model, task and method, scaled the same way;
3. where the paper has no time for the model (70B, Mixtral): the 8B model's, scaled by the
   parameters each token passes through (dense: all; Mixtral: the active 12.9B);
4. otherwise (full fine-tuning): the config's ``train_hours`` (the job's time limit) × the job's
   GPUs: an upper bound, not an estimate.

Evaluation (rules ``math``, ``humanevalplus``: one GPU per job): tokens each job generates =
problems × samples × ``max_new_tokens`` × ``--fill`` (1.0: every sequence runs to the cap, an upper
bound; HF ``generate`` pays for the longest sequence of each batch anyway). HF ``generate`` decodes a
batch per step, so a job takes ⌈problems × samples / batch⌉ × max_new_tokens × fill steps; the
step time is measured by ``benchmarks/gpu.py`` (``gpu.json``: base model for full fine-tuning and
epoch 0, an unmerged RaSA adapter for every adapter, as the pipeline evaluates) or, without it, a
stated default. Larger models scale by total parameters (decoding reads every weight per step).
vLLM (merged weights, continuous batching) is shown beside it: generated tokens / a throughput
that is **not measured here** (a stated default, ``--vllm-tokens-per-s``).
Forgetting (rule ``forgetting``; the base models' evaluations are the row ``forgetting_base``):
lm-eval scores log-likelihoods, no decoding: requests × tokens per request / prefill tokens/s.
Reconstruction (rule ``recon``): the §3 solver's start and iterations on 4096 × 14336 stacks, per module type.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rasa import method_registry, study
from rasa.paper_time import train_hours
from rasa.report.entries import load_config, paper_name
from rasa.resources import eval_gpus, recon_job
from rasa.runs import parse_run_id

PAPER_GPUS = 8  # the Time column: wall-clock hours on 1 node × 8 A100-40G
PAPER_EPOCHS = 8  # ... of one run of 8 epochs on the full training set
REFERENCE_MODEL = "Llama-3.1-8B"  # whose time and decoding speed scale to the models the paper did not time
REFERENCE_LAYERS = 32
RULES = ("train", "math", "humanevalplus", "forgetting", "forgetting_base", "recon", "total")
#: parameters (billions): (all, active per token); model cards of the four models
PARAMS_B = {"Llama-3.1-8B": (8.03, 8.03), "Mistral-0.3-7B": (7.25, 7.25), "Llama-3.1-70B": (70.6, 70.6),
            "Mixtral-8x7B": (46.7, 12.9)}
#: problems in the hub releases the pipeline fetches (rasa.hub): HumanEval+ v0.1.10, the MATH test set
HUB_PROBLEMS = {"humanevalplus": 164, "math": 5000}
#: forgetting tasks: (documents in lm-eval's split, choices per document = log-likelihood requests)
FORGETTING_DOCS = {"hellaswag": (10042, 4), "winogrande": (1267, 2), "arc_challenge": (1172, 4)}
TOKENS_PER_REQUEST = 80  # context + continuation, HellaSwag-dominated; an assumption

#: used when no measured gpu.json exists; each with its source
DEFAULTS = {
    "hf_step_s_base": (0.030, "assumed: HF generate step of an 8B model, bf16, batch 8-10, one A100-class GPU "
                              "(kernel-launch bound; not measured, run benchmarks/gpu.py)"),
    "hf_step_s_adapter": (0.045, "assumed: HF generate step of an 8B model with an unmerged adapter on 7 "
                                 "modules per layer, bf16, batch 8-10, one A100-class GPU "
                                 "(not measured, run benchmarks/gpu.py)"),
    "prefill_tokens_per_s": (5000.0, "assumed: forward-only throughput of an 8B model, bf16, with padding "
                                     "(not measured, run benchmarks/gpu.py)"),
    "recon_init_s": (45.0, "estimate in benchmarks/recon.py (not measured)"),
    "recon_iter_s": (0.070, "estimate in benchmarks/recon.py, float64 (not measured)"),
    "vllm_tokens_per_s": (2000.0, "assumed: vLLM output throughput for an 8B model on one A100-class GPU with "
                                  "many concurrent sequences; NOT measured here"),
}


def throughput(gpu_json: str | Path | None, vllm_tokens_per_s: float | None = None) -> dict:
    """Speed figures for the 8B reference model, ``{name: (value, source)}``: measured where ``gpu_json`` holds
    a full-mode GPU run, the stated defaults otherwise."""
    out = dict(DEFAULTS)
    if vllm_tokens_per_s:
        out["vllm_tokens_per_s"] = (vllm_tokens_per_s, "--vllm-tokens-per-s (given)")
    path = Path(gpu_json) if gpu_json else None
    if not (path and path.is_file()):
        return out
    res = json.loads(path.read_text())
    if res.get("mode") != "full" or not str(res.get("device", "")).startswith("cuda"):
        print(f"{path}: not a full GPU run (mode {res.get('mode')}, device {res.get('device')}); using defaults")
        return out
    where = f"measured: {path.name}, {res['device_name']}"
    gen = res.get("inference", {}).get("generate", [])
    for kind, variant in (("base", "base"), ("adapter", "rasa-r")):
        steps = [g["ms_per_step"] / 1e3 * REFERENCE_LAYERS / g["layers"]
                 for g in gen if g["variant"].startswith(variant)]
        if steps:
            scaled = not all(g["layers"] == REFERENCE_LAYERS for g in gen)
            note = f", scaled to {REFERENCE_LAYERS} layers" if scaled else ""
            out[f"hf_step_s_{kind}"] = (sum(steps) / len(steps), f"{where}, HF generate batches 8 and 10{note}")
    fwd = [f for f in res.get("inference", {}).get("forward", []) if f["variant"].endswith("unmerged")]
    if fwd:
        layers = res["settings"]["layers"]
        out["prefill_tokens_per_s"] = (min(f["tokens_per_s"] for f in fwd) * layers / REFERENCE_LAYERS,
                                       f"{where}, unmerged adapter forward")
    rec = res.get("recon")
    if rec and (rec["rows"], rec["cols"]) == (4096, 14336):
        out["recon_init_s"] = (rec["fast_init_s"], f"{where}, {rec['layers']} x 4096 x 14336 {rec['dtype']}")
        out["recon_iter_s"] = (rec["fast_per_iter_s"], out["recon_init_s"][1])
    return out


def _gpus(model_cfg: dict) -> int:
    return model_cfg.get("nodes", 1) * model_cfg.get("gpus_per_node", 0)


def _study_ranks(config: dict) -> list[int]:
    return sorted({r for entry in config["study"].values() for r in entry.get("ranks", [])})


def train_cost(config: dict, spec, speedup: float = 1.0) -> tuple[float, str]:
    """(GPU-hours, source) of one training run; see the module docstring for the order of sources."""
    model_cfg = config["models"][spec.model]
    gpus = _gpus(model_cfg)
    if not gpus:
        return 0.0, "CPU (no gpus_per_node)"
    name = paper_name(config, spec.model)
    scale = spec.epochs / PAPER_EPOCHS * spec.fraction * PAPER_GPUS / speedup
    ranks = [spec.r] + sorted(_study_ranks(config), key=lambda r: (abs(r - spec.r), r))
    if method_registry.get(spec.method).has_rank:
        for source_model in dict.fromkeys([name, REFERENCE_MODEL]):
            for r in ranks:
                hours = train_hours(source_model, spec.task, spec.method, r)
                if hours is None:
                    continue
                what = "paper Time" + ("" if r == spec.r else f" at r={r} (nearest rank)")
                if source_model != name:
                    if name not in PARAMS_B:
                        raise ValueError(f"models.{spec.model}.paper_name: {name!r} has no parameter count in "
                                         f"rasa.cost.PARAMS_B; add it to scale {REFERENCE_MODEL}'s training time")
                    ratio = PARAMS_B[name][1] / PARAMS_B[REFERENCE_MODEL][1]
                    hours *= ratio
                    what += f" of {REFERENCE_MODEL} x {ratio:.2f} (active parameters)"
                return hours * scale, what
    limit, what = model_cfg.get("train_hours"), "config train_hours"
    if limit is None:  # the job's Slurm time limit (rasa.resources.train_job): the partition's
        limit, what = config["resources"]["max_hours"], "resources.max_hours"
    return limit * gpus, f"{what} x GPUs (the job's time limit: an upper bound)"


def problems(config: dict, benchmark: str) -> int:
    """Problems of a generation benchmark: the hub release's size, or the lines of a local JSON Lines file."""
    path = config["benchmarks"][benchmark]["path"]
    if path == "hub":
        return HUB_PROBLEMS[benchmark]
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def forgetting_requests(config: dict) -> int:
    data_dir = config["benchmarks"]["forgetting"].get("data_dir")
    total = 0
    for task, (docs, choices) in FORGETTING_DOCS.items():
        if data_dir and data_dir != "hub":  # local task files (the tiny default); hub: the release sizes
            from rasa.evaluation.forgetting import TASKS

            with open(Path(data_dir) / TASKS[task][2], encoding="utf-8") as fh:
                docs = sum(1 for line in fh if line.strip())
        total += docs * choices
    return total


def _eval_model(run: str) -> tuple[str, str]:
    """(config model, 'base' or 'adapter') of an evaluation's run id."""
    if study.base_model(run):
        return study.base_model(run), "base"
    spec = parse_run_id(run)
    return spec.model, "adapter" if method_registry.get(spec.method).has_rank else "base"


def eval_hours(config: dict, run: str, benchmark: str, speed: dict, fill: float) -> dict:
    """Hours of one evaluation job on its GPU: {'hf': h, 'vllm': h, 'tokens': n}."""
    model, kind = _eval_model(run)
    name = paper_name(config, model)
    size = PARAMS_B.get(name, PARAMS_B[REFERENCE_MODEL])[0] / PARAMS_B[REFERENCE_MODEL][0]
    if benchmark == study.FORGETTING:
        h = forgetting_requests(config) * TOKENS_PER_REQUEST / speed["prefill_tokens_per_s"][0] * size / 3600
        return {"hf": h, "vllm": h, "tokens": 0}
    b = config["benchmarks"][benchmark]
    sequences = problems(config, benchmark) * b.get("n_samples", 1)
    steps = math.ceil(sequences / b["batch_size"]) * b["max_new_tokens"] * fill
    tokens = sequences * b["max_new_tokens"] * fill
    return {"hf": steps * speed[f"hf_step_s_{kind}"][0] * size / 3600,
            "vllm": tokens / speed["vllm_tokens_per_s"][0] * size / 3600, "tokens": tokens}


def recon_hours(config: dict, speed: dict) -> float:
    s = config["study"]["recon"]
    modules = [m for m in config["models"][s["model"]]["target_modules"] if m.endswith("_proj")]
    iters = s["fig2_iters"] + len(s["ranks"]) * len(s["ks"]) * s["iters"]
    return len(modules) * (speed["recon_init_s"][0] + iters * speed["recon_iter_s"][0]) / 3600


def estimate(config: dict, speed: dict, fill: float = 1.0, speedup: float = 1.0) -> list[dict]:
    """One row per (rule, backend, source): jobs, GPUs per job, GPU-hours; then the totals per backend."""
    study.check_config(config)
    groups: dict[tuple, dict] = {}

    def add(rule, backend, source, gpus, hours, tokens=0.0):
        """``source``: a text, or the name of a speed figure (shown as name=value, explained in the legend)."""
        detail = ""
        if source in speed:
            source, detail = f"{source}={speed[source][0]:g}", speed[source][1]
        row = groups.setdefault((rule, backend, source, gpus), {"rule": rule, "backend": backend, "jobs": 0,
                                                          "gpus_per_job": gpus, "gpu_hours": 0.0,
                                                          "generated_tokens": 0.0, "source": source,
                                                          "detail": detail})
        row["jobs"] += 1
        row["gpu_hours"] += hours
        row["generated_tokens"] += tokens

    for spec in study.all_runs(config):
        hours, source = train_cost(config, spec, speedup)
        add("train", "", source, _gpus(config["models"][spec.model]), hours)
    for run, _epoch, benchmark in study.all_evaluations(config):
        model, kind = _eval_model(run)
        gpus = eval_gpus(config, model)  # as the evaluation job asks Slurm for them
        h = eval_hours(config, run, benchmark, speed, fill)
        if benchmark == study.FORGETTING:
            rule = "forgetting_base" if study.base_model(run) else "forgetting"
            add(rule, "hf", "prefill_tokens_per_s", gpus, gpus * h["hf"])
            continue
        add(benchmark, "hf", f"hf_step_s_{kind}", gpus, gpus * h["hf"], h["tokens"])
        add(benchmark, "vllm", "vllm_tokens_per_s", gpus, gpus * h["vllm"], h["tokens"])
    if "recon" in config["study"]:
        gpus = recon_job(config, config["study"]["recon"]["model"]).gpus  # a CPU job: 0 GPU-hours
        add("recon", "", "recon_iter_s", gpus, gpus * recon_hours(config, speed))
    rows = sorted(groups.values(), key=lambda r: (RULES.index(r["rule"]), r["backend"], -r["gpu_hours"]))
    for backend in ("hf", "vllm"):
        total = sum(r["gpu_hours"] for r in rows if r["backend"] in ("", backend)
                    or (r["rule"].startswith("forgetting")))
        jobs = sum(r["jobs"] for r in rows if r["backend"] in ("", backend) or r["rule"].startswith("forgetting"))
        rows.append({"rule": "total", "backend": backend, "jobs": jobs, "gpus_per_job": "", "gpu_hours": total,
                     "generated_tokens": "", "source": f"training + recon + forgetting + generation with {backend}",
                     "detail": ""})
    return rows


def print_table(rows: list[dict], speed: dict) -> None:
    print(f"{'rule':16} {'backend':7} {'jobs':>5} {'GPUs/job':>8} {'GPU-hours':>10}  source")
    for r in rows:
        print(f"{r['rule']:16} {r['backend'] or '-':7} {r['jobs']:>5} {str(r['gpus_per_job']):>8} "
              f"{r['gpu_hours']:>10,.1f}  {r['source']}")
    print("speed figures:")
    for name, (value, source) in speed.items():
        print(f"  {name}={value:g}: {source}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", required=True)
    ap.add_argument("--gpu-json", default="results/benchmarks/gpu.json",
                    help="measured figures of benchmarks/gpu.py (stated defaults where absent)")
    ap.add_argument("--out", default="results/cost.csv")
    ap.add_argument("--fill", type=float, default=1.0,
                    help="mean generated length / max_new_tokens (1.0: every sequence runs to the cap)")
    ap.add_argument("--speedup", type=float, default=1.0,
                    help="training throughput of the cluster's GPUs relative to the paper's A100-40G")
    ap.add_argument("--vllm-tokens-per-s", type=float, default=None,
                    help=f"vLLM output tokens/s of an 8B model (default {DEFAULTS['vllm_tokens_per_s'][0]:.0f}, "
                         "assumed)")
    args = ap.parse_args(argv)
    if not 0 < args.fill <= 1:
        raise SystemExit(f"--fill must be in (0, 1], got {args.fill}")
    if args.speedup <= 0:
        raise SystemExit(f"--speedup must be positive, got {args.speedup}")
    config = load_config(args.configfile)
    speed = throughput(args.gpu_json, args.vllm_tokens_per_s)
    rows = estimate(config, speed, args.fill, args.speedup)
    print(f"GPU-hours for {args.configfile} (fill {args.fill}, training speedup {args.speedup}):")
    print_table(rows, speed)
    from rasa.io import write_csv_atomic

    write_csv_atomic(args.out, [dict(r, gpu_hours=round(r["gpu_hours"], 3)) for r in rows])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
