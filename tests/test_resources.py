"""Job resources derived from the study config (rasa.resources) and the paper's Time column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
import yaml

from rasa import resources, study
from rasa.paper_time import train_hours
from rasa.runs import RunSpec

ROOT = Path(__file__).resolve().parents[1]


def _config(name: str) -> dict:
    return yaml.safe_load((ROOT / "configs" / name).read_text())


@pytest.fixture(scope="module")
def paper():
    return _config("paper.yaml")


@pytest.fixture(scope="module")
def tiny():
    return _config("config.yaml")


def test_train_hours_reads_the_papers_time_column():
    assert train_hours("Llama-3.1-8B", "code", "lora", 8) == 9.6
    assert train_hours("Mistral-0.3-7B", "math", "RaSA", 32) == 16.5  # the paper's spelling too
    assert train_hours("Llama-3.1-8B", "math_MATH", "vera", 1024) == 22.4
    assert train_hours("Llama-3.1-8B", "math", "fft", 0) is None      # the paper gives none
    assert train_hours("Llama-3.1-70B", "math", "lora", 4) is None
    with pytest.raises(ValueError, match="unknown task"):
        train_hours("Llama-3.1-8B", "chat", "lora", 8)


def test_training_time_is_the_papers_cell_times_the_margin(paper):
    job = resources.train_job(paper, RunSpec("llama-3.1-8b", "code", "lora", 8, 0, 1.0, 8),
                              "configs/deepspeed/zero2.json")
    assert job.runtime == round(9.6 * 60 * paper["resources"]["time_margin"])
    assert (job.nodes, job.gpus, job.cpus) == (1, 8, 8 * paper["resources"]["cpus_per_gpu"])


def test_training_time_scales_with_epochs_and_fraction_and_falls_back_to_the_nearest_rank(paper):
    quarter = RunSpec("llama-3.1-8b", "math", "rasa", 8, 1, 0.25, 8)
    hours, source = resources.paper_hours(paper, quarter)
    assert hours == pytest.approx(23.8 / 4) and source == "paper"
    rank4 = RunSpec("mistral-7b-v0.3", "math", "lora", 4, 0, 1.0, 2)  # Figure 6: no r=4 cell
    hours, source = resources.paper_hours(paper, rank4)
    assert hours == pytest.approx(14.6 * 2 / 8) and source == "paper (r=8)"


def test_runs_without_a_paper_time_get_the_partition_limit(paper):
    limit = paper["resources"]["max_hours"] * 60
    for spec in (RunSpec("llama-3.1-8b", "math", "fft", 0, 0, 1.0, 8),
                 RunSpec("llama-3.1-70b", "math", "lora", 4, 0, 1.0, 2),
                 RunSpec("mixtral-8x7b", "math", "rasa", 4, 1, 1.0, 2)):
        assert resources.paper_hours(paper, spec) == (None, "max_hours")
        assert resources.train_job(paper, spec, "configs/deepspeed/zero3.json").runtime == limit


def test_full_fine_tuning_keeps_its_offloaded_optimizer_state_in_host_memory(paper):
    lora = resources.train_job(paper, RunSpec("llama-3.1-8b", "math", "lora", 8, 0, 1.0, 8),
                               "configs/deepspeed/zero2.json")
    fft = resources.train_job(paper, RunSpec("llama-3.1-8b", "math", "fft", 0, 0, 1.0, 8),
                              "configs/deepspeed/zero2.json")
    # fp32 weight, gradient and Lion moment of 8.03e9 parameters, minus the adapter's share
    assert (fft.mem_mb - lora.mem_mb) / 1024 == pytest.approx(8.03 * 12 * 0.95, abs=0.01)


def test_70b_and_mixtral_are_evaluated_on_several_gpus_in_bfloat16(paper):
    assert resources.eval_gpus(paper, "llama-3.1-8b") == 1     # 16 GB of weights on a 40 GB GPU
    assert resources.eval_gpus(paper, "mixtral-8x7b") == 4     # 93 GB
    assert resources.eval_gpus(paper, "llama-3.1-70b") == 8    # 141 GB
    job = resources.generation_job(paper, "llama-3.1-70b", "math")
    assert job.mem_mb / 1024 == pytest.approx(paper["resources"]["gb_per_process"] + 141.2, abs=0.1)
    assert job.cpus == 8 * paper["resources"]["cpus_per_gpu"]


def test_a_model_larger_than_a_node_is_refused_naming_the_field(paper):
    small_gpus = {**paper, "resources": {**paper["resources"], "gpu_mem_gb": 16}}
    with pytest.raises(ValueError, match="resources.gpu_mem_gb"):
        resources.eval_gpus(small_gpus, "llama-3.1-70b")
    small_nodes = {**paper, "resources": {**paper["resources"], "node_mem_gb": 100}}
    with pytest.raises(ValueError, match="resources.node_mem_gb"):
        resources.train_job(small_nodes, RunSpec("llama-3.1-70b", "math", "lora", 4, 0, 1.0, 2),
                            "configs/deepspeed/zero3.json")


def test_scoring_asks_one_cpu_per_worker(paper):
    job = resources.scoring_job(paper, "humanevalplus")
    assert job.gpus == 0 and job.cpus == paper["benchmarks"]["humanevalplus"]["workers"]


def test_every_tiny_job_fits_a_node_of_a_few_gb_without_gpus(tiny):
    limit_mb = tiny["resources"]["node_mem_gb"] * 1024
    jobs = [resources.train_job(tiny, spec, None) for spec in study.all_runs(tiny)]
    for model in tiny["models"]:
        jobs += [resources.generation_job(tiny, model, b) for b in ("humanevalplus", "math", "forgetting")]
        jobs += [resources.cpu_job(tiny, model, "build")]
    jobs += [resources.scoring_job(tiny, b) for b in ("humanevalplus", "math")]
    jobs += [resources.recon_job(tiny, "tiny-llama")]
    for job in jobs:
        assert job.gpus == 0 and job.nodes == 1 and job.mem_mb <= limit_mb, job
        assert job.runtime <= tiny["resources"]["max_hours"] * 60


@pytest.mark.parametrize("name, cls", [("tiny-llama", "Llama"), ("tiny-mixtral", "Mixtral")])
def test_built_model_size_follows_its_config(tiny, name, cls):
    config = getattr(transformers, f"{cls}Config")(vocab_size=512, tie_word_embeddings=False,
                                                  **tiny["models"][name]["config"])
    with torch.device("meta"):
        model = getattr(transformers, f"{cls}ForCausalLM")(config)
    assert resources.params(tiny, name) == sum(p.numel() for p in model.parameters())


def test_hub_models_need_their_size(paper):
    broken = json.loads(json.dumps(paper))
    del broken["models"]["llama-3.1-8b"]["params_b"]
    with pytest.raises(ValueError, match="models.llama-3.1-8b.params_b"):
        resources.params(broken, "llama-3.1-8b")


def test_a_models_own_train_hours_stand_in_where_the_paper_has_none(paper):
    config = json.loads(json.dumps(paper))
    config["models"]["mixtral-8x7b"]["train_hours"] = 30
    spec = RunSpec("mixtral-8x7b", "math", "rasa", 4, 1, 1.0, 2)
    assert resources.paper_hours(config, spec) == (30 * 2 / 8, "train_hours")
    assert resources.train_job(config, spec, None).runtime == round(30 * 2 / 8 * 60 * 1.5)
