"""The method registry is the one list of methods: a method registered here (an entry and a trivial adapter, no
other file edited) reaches the config check, the study grid, the run ids, the parameter counts and the tables;
the schema, the report's order and the benchmark agree with it."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from rasa import method_registry, methods, param_counts, study
from rasa.method_registry import Method
from rasa.runs import parse_run_id, run_id

from adapter_models import LLAMA_TARGETS, tiny_llama

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
sys.path.insert(0, str(ROOT / "tests/report"))
import report_synthetic  # noqa: E402  (a helper module beside the report tests)


def rslora_config(model, a):
    """The hypothetical method's adapter: PEFT LoRA with rank-stabilised scaling alpha / sqrt(r)."""
    from peft import LoraConfig

    return LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=a.dropout, target_modules=a.target_modules,
                      use_rslora=True, task_type=a.task_type)


@pytest.fixture
def rslora():
    entry = method_registry.register(Method("rslora", "rsLoRA", rslora_config, colormap="Greens"), before="rasa")
    yield entry
    method_registry.unregister("rslora")
    assert "rslora" not in method_registry.names()


def tiny_config_with(method: str) -> dict:
    config = yaml.safe_load((ROOT / "configs/config.yaml").read_text())
    config["methods"][method] = {"lr": 1e-4}
    config["study"]["table1"]["methods"].append(method)
    return config


def test_registered_method_reaches_config_check_grid_and_run_ids(rslora):
    config = tiny_config_with("rslora")
    validate(copy.deepcopy(config), str(SCHEMA))
    study.check_config(config)
    runs = [s for s in study.all_runs(config) if s.method == "rslora"]
    ranks = config["study"]["table1"]["ranks"]
    assert sorted(s.r for s in runs) == sorted(ranks) and all(s.k == 0 for s in runs)
    ids = {run_id(s) for s in runs}
    assert {f"{s.model}__code__rslora-r{s.r}__f100__e{s.epochs}" for s in runs} == ids
    assert all(parse_run_id(i).method == "rslora" for i in ids)
    evals = {e[0] for e in study.target_evaluations(config, "table1")}
    assert ids <= evals


def test_unregistered_method_is_refused_naming_field_and_known_methods():
    config = tiny_config_with("rslora")
    validate(copy.deepcopy(config), str(SCHEMA))  # the schema has no list of methods ...
    with pytest.raises(ValueError, match=r"^methods: unknown method 'rslora'; known methods: fft, vera, lora"):
        study.check_config(config)  # ... the registry is the list
    config["methods"].pop("rslora")
    with pytest.raises(ValueError, match=r"study\.table1\.methods: unknown method 'rslora'"):
        study.check_config(config)


def test_registered_method_has_parameter_counts(rslora):
    model = methods.apply_method(tiny_llama(), "rslora", 4, k=None, alpha=8.0, dropout=0.0,
                                 target_modules=LLAMA_TARGETS)
    lora = methods.apply_method(tiny_llama(), "lora", 4, k=None, alpha=8.0, dropout=0.0,
                                target_modules=LLAMA_TARGETS)
    counts = methods.parameter_counts(model, "rslora")
    assert counts == methods.parameter_counts(lora, "lora") and counts["trainable"] > 0
    assert model.peft_config["default"].use_rslora
    (row,) = param_counts.table(models=("Llama-3.1-8B",), rows=[("rslora", 8)])
    assert row["trainable"] == 20_971_520 and row["match"] is None and param_counts.check([row]) == []


def test_registered_method_appears_in_the_tables(rslora, tmp_path):
    from rasa.report import render
    from rasa.report.style import method_color

    config = report_synthetic.paper_grid_config()
    config["methods"]["rslora"] = {}
    config["study"]["table1"]["methods"].append("rslora")
    root = report_synthetic.write_results(config, tmp_path)
    render("table1", config, root)
    table = pd.read_csv(root / "tables/table1.csv")
    at_r8 = table[table["r"] == 8]["Method"].tolist()
    assert at_r8 == ["LoRA", "MoRA", "rsLoRA", "RaSA"]  # registered before RaSA
    row = table[(table["Method"] == "rsLoRA") & (table["r"] == 16)].iloc[0]
    assert row["# Trainable Param. (M)"] > 0  # runs.csv's trainable_params of the run
    scores = row.filter(regex=r"P@1 (BEST|LAST)$")
    assert len(scores) == 4 and scores.notna().all()
    assert "rsLoRA" in (root / "tables/table1.md").read_text()
    assert method_color("rslora") != method_color("lora")


def test_schema_report_and_benchmark_follow_the_registry():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["$defs"]["method"] == {"type": "string", "description": schema["$defs"]["method"]["description"]}
    assert "lora" not in SCHEMA.read_text().replace("description", "")  # no second list of method names
    from rasa.report.tables import Row, sort_rows

    rows = [Row(m, 8) for m in reversed(method_registry.names())]
    assert [r.method for r in sort_rows(rows)] == list(method_registry.names())  # own rows (FFT, VeRA) first
    assert [m for m in method_registry.names() if method_registry.get(m).own_row] == ["fft", "vera"]
    spec = importlib.util.spec_from_file_location("bench_adapters", ROOT / "benchmarks/adapters.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.BENCH_METHODS == method_registry.names()
    tables = pd.read_csv(ROOT / "rasa/report/paper_numbers.csv", usecols=["table", "method"])
    paper_labels = set(tables[tables["table"].isin(["table1", "table2"])]["method"])
    assert paper_labels == {method_registry.get(m).label for m in method_registry.names()}


def test_registry_refuses_bad_names_and_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        method_registry.register(Method("lora", "LoRA", rslora_config))
    with pytest.raises(ValueError, match="part of run ids"):
        method_registry.register(Method("my-lora", "X", rslora_config))
    with pytest.raises(ValueError, match="known methods"):
        method_registry.get("dora")
    assert method_registry.default_k(4) == 1 and method_registry.default_k(32) == 4
    assert method_registry.get("rasa").k_for(16) == 2 and method_registry.get("lora").k_for(16, 3) == 0
