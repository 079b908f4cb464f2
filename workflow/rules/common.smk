# Run ids, grid expansion and input functions: wiring only. The grid is expanded by rasa.study,
# a run's training settings are built by rasa.run_settings, paths and job layouts come from
# rasa.workflow_inputs and job sizes from rasa.resources; nothing here re-derives them.
import json
import os
import re
from pathlib import Path

from rasa import hub, study
from rasa import resources as sizing
from rasa import run_settings as settings_of
from rasa import workflow_inputs as inputs_of
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


# Shared by the train and evaluation rules; rules with a {model} wildcard each constrain it to the
# models they make (built, downloaded, converted).
wildcard_constraints:
    run=alternatives(EVAL_RUNS),
    epoch=r"\d+",


def model_dir(model):
    return settings_of.model_dir(config, model)


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


HUB_DATASETS = inputs_of.hub_datasets(config)
HUB_BENCHMARKS = inputs_of.hub_benchmarks(config)


def dataset_source(wildcards):
    """The local file (or saved folder) to sample from; hub datasets are downloaded first."""
    if wildcards.dataset in HUB_DATASETS:
        return [f"{W}/hub/datasets/{wildcards.dataset}"]
    return [config["datasets"][wildcards.dataset]["path"]]


def benchmark_file(name):
    return inputs_of.benchmark_file(config, name)


def benchmark_revision(wildcards):
    return config["benchmarks"][wildcards.benchmark]["revision"]


def base_model_input(model):
    """The base model's folder where a rule makes it (built, downloaded, converted); none if local."""
    return {"model": model_dir(model)} if MODELS[model]["source"] != "local" else {}


def train_input(wildcards):
    spec = parse_run_id(wildcards.run)
    return {"data": inputs_of.sample_path(config, spec), **base_model_input(spec.model)}


def run_settings(wildcards):
    """The run's RunSettings as JSON: what rasa.train receives and the manifest records."""
    return settings_of.build(config, parse_run_id(wildcards.run)).to_json()


def trained_weights(run, epoch):
    return f"{W}/runs/{run}/weights/epoch-{epoch}"


def eval_input(wildcards):
    """The run's weights (none for a base model) and the model folder, unless a local path."""
    weights = {} if study.base_model(wildcards.run) else {"weights": f"{W}/runs/{wildcards.run}/weights"}
    return {**weights, **base_model_input(model_of_run(wildcards))}


def eval_csv(run, epoch, benchmark):
    return f"{W}/eval/{run}/epoch-{epoch}/{benchmark}.csv"


def model_of_run(wildcards):
    return study.base_model(wildcards.run) or parse_run_id(wildcards.run).model


# Resources of a training job: its process layout (rasa.workflow_inputs.TrainLayout) from its
# model, its size (rasa.resources.train_job) from the run; the Slurm profile passes them on.
def _layout(wildcards):
    return inputs_of.train_layout(config, model_of_run(wildcards))


def train_layout(field):
    """A TrainLayout field as a rule's resource function (nodes, mpi, tasks, gpu, gres, ...)."""
    return lambda wildcards: getattr(_layout(wildcards), field)


def _train_job(wildcards):
    spec = parse_run_id(wildcards.run)
    return sizing.train_job(config, spec, settings_of.deepspeed_config(config, spec.model))


def train_job(field):
    """cpus (per node), mem_mb (per node), runtime (the paper's hours × margin, capped)."""
    return lambda wildcards: getattr(_train_job(wildcards), field)


def train_cpus_per_task(wildcards):
    return _layout(wildcards).cpus_per_task(_train_job(wildcards).cpus)


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
    """Generation engine and placement over the job's GPUs (rasa.workflow_inputs.engine_flags)."""
    gpus = _generation(benchmark, "gpus")
    return lambda wildcards: inputs_of.engine_flags(config, benchmark, gpus(wildcards))


def device_map_flag(wildcards):
    """Forgetting on several GPUs: the layers spread over them."""
    return "--device-map auto" if _generation("forgetting", "gpus")(wildcards) > 1 else ""


def build_resource(field):
    def get(wildcards):
        return getattr(sizing.cpu_job(config, wildcards.model, "build"), field)

    return get


def eval_model_dir(wildcards):
    return model_dir(model_of_run(wildcards))


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


RECON = inputs_of.recon_plan(config)  # the run whose updates Figures 2-3 decompose, or None


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


REPORT_TARGETS = {name: spec for name, spec in TARGETS.items() if inputs_of.in_study(config, name)}


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
    return inputs_of.study_outputs(config, REPORT_TARGETS)


def results_root(wildcards, output):
    """The results folder of a table or figure output (results/tables/x.md -> results)."""
    return str(Path(output[0]).parents[1])
