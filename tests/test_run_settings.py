"""The training contract (rasa.run_settings) and the values the rules wire in (rasa.workflow_inputs)."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from rasa import run_settings, study, workflow_inputs
from rasa.run_settings import RunSettings
from rasa.runs import RunSpec, run_id

ROOT = Path(__file__).resolve().parents[1]


def _validated(name: str) -> dict:
    """A config as the Snakefile sees it: schema-checked, defaults filled in."""
    config = yaml.safe_load((ROOT / "configs" / name).read_text())
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return config


@pytest.fixture(scope="module", params=["config.yaml", "paper.yaml"])
def config(request):
    return _validated(request.param)


@pytest.fixture(scope="module")
def paper():
    return _validated("paper.yaml")


def test_every_run_builds_and_survives_its_json(config):
    for spec in study.all_runs(config):
        s = run_settings.build(config, spec)
        assert s.run_id == run_id(spec) and (s.method, s.r, s.k) == (spec.method, spec.r, spec.k)
        assert s.lr == config["methods"][spec.method]["lr"]
        assert s.alpha == config["tasks"][spec.task]["alpha"]
        assert s.global_batch == config["training"]["global_batch"]
        assert RunSettings.from_json(s.to_json()) == s
        assert json.loads(s.to_json()) == json.loads(json.dumps(s.to_dict()))


def test_model_entries_override_training(paper):
    llama = run_settings.build(paper, RunSpec("llama-3.1-8b", "math", "vera", r=1024))
    assert llama.micro_batch == 4  # models.llama-3.1-8b.micro_batch.math.vera
    assert run_settings.build(paper, RunSpec("llama-3.1-8b", "math", "lora", r=8)).micro_batch == 3
    assert run_settings.build(paper, RunSpec("llama-3.1-8b", "code", "lora", r=8)).micro_batch == 2
    big = run_settings.build(paper, RunSpec("llama-3.1-70b", "math", "rasa", r=8, k=1))
    assert (big.nodes, big.procs_per_node) == (8, 8)
    assert big.deepspeed == "configs/deepspeed/zero3.json" and llama.deepspeed == "configs/deepspeed/zero2.json"
    assert big.model_path == f"{paper['workdir']}/models/llama-3.1-70b"
    assert big.revision == paper["models"]["llama-3.1-70b"]["revision"]


def test_a_missing_config_key_is_named(paper):
    broken = copy.deepcopy(paper)
    del broken["methods"]["lora"]["lr"]
    with pytest.raises(ValueError, match=r"config lacks methods\.lora\.lr"):
        run_settings.build(broken, RunSpec("llama-3.1-8b", "math", "lora", r=8))
    with pytest.raises(ValueError, match=r"config lacks models\.gpt-9"):
        run_settings.build(paper, RunSpec("gpt-9", "math", "lora", r=8))


def test_bad_settings_json_is_refused_naming_the_field(paper):
    good = run_settings.build(paper, RunSpec("llama-3.1-8b", "math", "lora", r=8)).to_dict()
    with pytest.raises(ValueError, match=r"missing fields \['lr'\]"):
        RunSettings.from_dict({k: v for k, v in good.items() if k != "lr"})
    with pytest.raises(ValueError, match=r"unknown fields \['learning_rate'\]"):
        RunSettings.from_dict(dict(good, learning_rate=1e-4))
    with pytest.raises(ValueError, match=r"lr='5e-4' is not of type"):
        RunSettings.from_dict(dict(good, lr="5e-4"))
    with pytest.raises(ValueError, match=r"epochs=True is not of type"):
        RunSettings.from_dict(dict(good, epochs=True))
    with pytest.raises(ValueError, match=r"target_modules=\['q_proj', 3\]"):
        RunSettings.from_dict(dict(good, target_modules=["q_proj", 3]))
    assert RunSettings.from_dict(dict(good, deepspeed=None)).deepspeed is None


def test_settings_fields_are_what_training_reads():
    """The contract's fields appear in rasa.train, so none is carried without a reader."""
    source = (ROOT / "rasa/train.py").read_text()
    unread = [f.name for f in dataclasses.fields(RunSettings)
              if not re.search(rf"\bs\.{f.name}\b", source)]
    # recorded in the manifest only: where the run sits in the paper and the study
    assert sorted(unread) == ["fraction", "model", "paper_model"], unread


def test_pretrain_corpus_leaves_out_the_generation_test_sets():
    tiny = _validated("config.yaml")
    corpus = workflow_inputs.pretrain_corpus(tiny)
    tests = {tiny["benchmarks"][b]["path"] for b in ("humanevalplus", "math")}
    assert tests <= set(workflow_inputs.fixture_corpus())
    assert not tests & set(corpus)
    assert set(corpus) | tests == set(workflow_inputs.fixture_corpus())


def test_train_layout_of_one_node_and_of_several():
    one = workflow_inputs.TrainLayout(nodes=1, procs_per_node=8, gpus_per_node=8)
    assert (one.mpi, one.tasks, one.tasks_per_node, one.tasks_per_gpu, one.gpu, one.gres) == (
        "srun", None, 8, None, 8, "")
    assert one.cpus_per_task(64) == 8
    many = workflow_inputs.TrainLayout(nodes=8, procs_per_node=1, gpus_per_node=8)
    assert (many.tasks, many.tasks_per_gpu, many.gpu, many.gres) == (8, 0, 0, "gpu:8")
    cpu = workflow_inputs.TrainLayout(nodes=1, procs_per_node=1, gpus_per_node=0)
    assert (cpu.mpi, cpu.tasks, cpu.gpu, cpu.cpus_per_task(2)) == (None, None, 0, 2)
