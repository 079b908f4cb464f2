"""What each Slurm job asks for, derived from the study config (its models, scale and ``resources:``).

The Slurm profile fixes no number: the same profile serves the tiny study (a few GB, one CPU) and
the paper (8 GPUs per node, hundreds of GB). Every function here is pure (config in, numbers out)
and every formula is an estimate stated in its docstring; the ``resources:`` entry of the config
holds the few facts about the cluster they need:

``max_hours``       the partition's time limit: no job asks for more (a longer training run
                    continues across requeues from its checkpoints).
``time_margin``     factor on the paper's training hours (other GPUs, other library versions).
``node_mem_gb``     memory of one node; a job that needs more is refused before anything runs.
``gpu_mem_gb``      memory of one GPU (the paper's A100-40G: 40).
``cpus_per_gpu``    CPUs a job gets per GPU (DeepSpeed's CPU optimizer threads, tokenisation).
``gb_per_process``  host memory of one Python process with torch, besides model weights.
``gb_per_worker``   host memory of one scoring worker (a sandboxed program, a sympy check).
``minutes_per_b``   generation (humanevalplus, math) and forgetting minutes per 10⁹ parameters:
                    decoding is memory-bound, so its time grows with the bytes of weights read.
``minutes``         flat limits: ``scoring``, ``recon``, ``mechanism``, ``build``, and ``min``
                    (the floor of every job).

Model sizes come from ``models.<name>.params_b`` (10⁹ parameters; required for hub and local
models) or, for models built from a config, from that config (:func:`params_of_spec`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from rasa import method_registry
from rasa.paper_time import train_hours
from rasa.runs import RunSpec

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: The Time columns of Tables 1-2 are for 8 epochs of the full training set.
PAPER_EPOCHS = 8
#: Upper bound on an adapter's trainable share of the model (AdaLoRA r=32 with its importance
#: estimates on Llama-3.1-8B: 378M of 8.0B, 4.7 %).
ADAPTER_SHARE = 0.05
#: Generation memory beyond the weights: KV cache and activations of a batch (Llama-3.1-8B, 10
#: sequences of 2048 tokens: 2.7 GB of KV cache next to 16 GB of weights).
GENERATION_HEADROOM = 1.25
#: Optimizer state ZeRO-Offload keeps on the host per trainable parameter: fp32 master weight,
#: fp32 gradient and Lion's one fp32 moment.
OFFLOAD_BYTES = 12
GENERATION_BENCHMARKS = ("humanevalplus", "math")


@dataclass(frozen=True)
class Job:
    """One job's request: ``nodes``; ``gpus`` and ``cpus`` per node; ``mem_mb`` per node;
    ``runtime`` in minutes."""

    nodes: int = 1
    gpus: int = 0
    cpus: int = 1
    mem_mb: int = 1024
    runtime: int = 10


def params_of_spec(spec: dict, vocab_size: int) -> float:
    """Parameters of a Llama or Mixtral model built from ``spec["config"]`` (untied embeddings)."""
    c = spec["config"]
    h, i, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    kv = h // c["num_attention_heads"] * c.get("num_key_value_heads", c["num_attention_heads"])
    experts = c.get("num_local_experts", 1)
    router = h * experts if spec.get("arch") == "mixtral" else 0
    layer = 2 * h * h + 2 * h * kv + 3 * h * i * experts + router + 2 * h
    return 2 * vocab_size * h + layers * layer + h


def params(config: dict, model: str) -> float:
    """Parameters of a config model."""
    spec = config["models"][model]
    if "params_b" in spec:
        return spec["params_b"] * 1e9
    if spec["source"] == "build":
        return params_of_spec(spec, config.get("tokenizer", {}).get("vocab_size", 512))
    raise ValueError(f"models.{model}.params_b: give the model's size in 10^9 parameters (e.g. "
                     "8.03 for Llama-3.1-8B); job memory and GPUs are derived from it")


def model_dtype(config: dict, model: str) -> str:
    return config["models"][model].get("dtype", config["training"]["dtype"])


def weights_gb(config: dict, model: str) -> float:
    return params(config, model) * BYTES[model_dtype(config, model)] / 1e9


def _res(config: dict) -> dict:
    return config["resources"]


def _mb(config: dict, gb: float, what: str) -> int:
    """``gb`` as MB, refused (naming the field) when it exceeds a node."""
    limit = _res(config)["node_mem_gb"]
    if gb > limit:
        raise ValueError(f"resources.node_mem_gb: {what} needs {gb:.1f} GB per node but a node has "
                         f"{limit} GB; use nodes with more memory (and raise node_mem_gb)")
    return math.ceil(gb * 1024)


def _minutes(config: dict, minutes: float) -> int:
    """Between the floor ``minutes.min`` and the partition's ``max_hours``."""
    r = _res(config)
    return int(min(max(math.ceil(minutes), r["minutes"]["min"]), r["max_hours"] * 60))


# --- training ---------------------------------------------------------------------------------

def deepspeed_offload(path: str | None) -> tuple[bool, bool]:
    """(optimizer offloaded to the CPU, parameters offloaded) in a DeepSpeed config file."""
    if not path:
        return False, False
    zero = json.loads(Path(path).read_text()).get("zero_optimization", {})
    return tuple(zero.get(key, {}).get("device") == "cpu"
                 for key in ("offload_optimizer", "offload_param"))


def paper_hours(config: dict, spec: RunSpec) -> tuple[float | None, str]:
    """The paper's hours for this run scaled to its epochs and data fraction, and where they come
    from: the run's own cell; the nearest rank's cell of the same method (Figure 6's r = 4; an
    adapter's time hardly depends on its rank: LoRA 9.6-10.0 h over r = 8-32); the model's
    ``train_hours`` (for 8 epochs, where the paper gives no time: FFT, 70B, Mixtral); else none."""
    model = config["models"][spec.model]
    scale = spec.epochs / PAPER_EPOCHS * spec.fraction
    hours = train_hours(model["paper_name"], spec.task, spec.method, spec.r)
    if hours is not None:
        return hours * scale, "paper"
    for r in sorted((8, 16, 32), key=lambda x: abs(x - spec.r)):
        hours = train_hours(model["paper_name"], spec.task, spec.method, r)
        if hours is not None:
            return hours * scale, f"paper (r={r})"
    if "train_hours" in model:
        return model["train_hours"] * scale, "train_hours"
    return None, "max_hours"


def train_job(config: dict, spec: RunSpec, deepspeed: str | None) -> Job:
    """A training job. Time: the paper's hours (:func:`paper_hours`) × ``time_margin``, capped by
    ``max_hours`` (the whole partition limit where no time is known). Host memory per node:
    one ``gb_per_process`` per process, the weights once (read through a shared page cache), and
    what ZeRO-Offload keeps on the host (optimizer state of the trainable parameters, and the
    parameters themselves under ZeRO-3 parameter offload), split over the nodes. Without GPUs
    every process holds the model, its gradients and the optimizer state itself."""
    r, model = _res(config), config["models"][spec.model]
    nodes, procs = model.get("nodes", 1), model.get("procs_per_node", 1)
    gpus = model.get("gpus_per_node", 0)
    n = params(config, spec.model)
    trainable = ADAPTER_SHARE * n if method_registry.get(spec.method).has_rank else n  # FFT: all
    if gpus:
        opt_off, param_off = deepspeed_offload(deepspeed)
        offload = (trainable * OFFLOAD_BYTES * opt_off + n * 2 * param_off) / 1e9
        gb = procs * r["gb_per_process"] + weights_gb(config, spec.model) + offload / nodes
        cpus = gpus * r["cpus_per_gpu"]
    else:
        per_proc = (n * 4 + trainable * OFFLOAD_BYTES) / 1e9
        gb = procs * (r["gb_per_process"] + per_proc)
        cpus = procs
    hours, _ = paper_hours(config, spec)
    minutes = hours * 60 * r["time_margin"] if hours is not None else r["max_hours"] * 60
    return Job(nodes=nodes, gpus=gpus, cpus=cpus,
               mem_mb=_mb(config, gb, f"training {spec.model} ({spec.method})"),
               runtime=_minutes(config, minutes))


# --- evaluation -------------------------------------------------------------------------------

def eval_gpus(config: dict, model: str) -> int:
    """GPUs holding the model for generation or forgetting: none where the model trains on CPUs;
    else enough for the weights in the model's dtype plus the KV cache (×1.25), rounded up to a
    power of two (a valid tensor-parallel size for vLLM; ``device_map`` spreads the layers)."""
    spec = config["models"][model]
    if not spec.get("gpus_per_node", 0):
        return 0
    need = weights_gb(config, model) * GENERATION_HEADROOM / _res(config)["gpu_mem_gb"]
    gpus = 2 ** math.ceil(math.log2(max(1.0, need)))
    if gpus > spec["gpus_per_node"]:
        raise ValueError(f"resources.gpu_mem_gb: evaluating {model} needs {gpus} GPUs of "
                         f"{_res(config)['gpu_mem_gb']} GB but a node has {spec['gpus_per_node']}")
    return gpus


def generation_job(config: dict, model: str, benchmark: str) -> Job:
    """Generation (``humanevalplus``, ``math``) or the forgetting evaluation (``forgetting``):
    GPUs from :func:`eval_gpus`; ``cpus_per_gpu`` per GPU (one CPU without GPUs); host memory:
    one process and the weights (loaded on the host first; also what vLLM merges an adapter into);
    time ``minutes_per_b[benchmark]`` per 10⁹ parameters."""
    r = _res(config)
    gpus = eval_gpus(config, model)
    gb = r["gb_per_process"] + weights_gb(config, model)
    minutes = r["minutes_per_b"][benchmark] * params(config, model) / 1e9
    return Job(gpus=gpus, cpus=max(1, gpus * r["cpus_per_gpu"]),
               mem_mb=_mb(config, gb, f"evaluating {model} ({benchmark})"),
               runtime=_minutes(config, minutes))


def scoring_job(config: dict, benchmark: str) -> Job:
    """Scoring HumanEval+ (sandboxed programs) or MATH (sympy checks) on CPUs: one CPU per worker
    (``benchmarks.<name>.workers``: the job's CPUs are its workers), ``gb_per_worker`` each."""
    r = _res(config)
    workers = config["benchmarks"][benchmark]["workers"]
    gb = r["gb_per_process"] + workers * r["gb_per_worker"]
    return Job(cpus=workers, mem_mb=_mb(config, gb, f"scoring {benchmark}"),
               runtime=_minutes(config, r["minutes"]["scoring"]))


# --- analysis and building ---------------------------------------------------------------------

def recon_job(config: dict, model: str) -> Job:
    """Figures 2-3: weight updates stacked per module type in float64 (Llama-3.1-8B's MLP stack
    alone is 15 GB); we ask for the whole model in float64 besides the process, and a GPU's
    share of CPUs (``cpus_per_gpu``) for the multi-threaded SVDs and solves."""
    r = _res(config)
    gb = r["gb_per_process"] + params(config, model) * 8 / 1e9
    return Job(cpus=r["cpus_per_gpu"], mem_mb=_mb(config, gb, f"recon on {model}"),
               runtime=_minutes(config, r["minutes"]["recon"]))


def cpu_job(config: dict, model: str, kind: str) -> Job:
    """A one-process CPU job on a model (``mechanism``; ``build``: pre-training a tiny model):
    the process, the model in float32, its gradients and Lion state."""
    r = _res(config)
    gb = r["gb_per_process"] + params(config, model) * (4 + OFFLOAD_BYTES) / 1e9
    return Job(mem_mb=_mb(config, gb, f"{kind} {model}"),
               runtime=_minutes(config, r["minutes"][kind]))
