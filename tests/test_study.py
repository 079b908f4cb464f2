"""rasa.study.target_evaluations: the tables' base-model evaluations (`study.<table>.base`)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rasa import study

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/config.yaml").read_text())


def _with_base(table: str) -> dict:
    config = copy.deepcopy(CONFIG)
    config["study"][table]["base"] = True
    return config


def test_tables_have_no_base_evaluation_by_default():
    for table in study.TABLES:
        assert all(epoch >= 1 for _, epoch, _ in study.target_evaluations(CONFIG, table))


def test_base_on_adds_epoch_zero_per_model_on_the_tables_benchmark():
    for table in study.TABLES:
        entry = CONFIG["study"][table]
        bench = CONFIG["tasks"][entry["task"]]["benchmark"]
        before = study.target_evaluations(CONFIG, table)
        after = study.target_evaluations(_with_base(table), table)
        added = [e for e in after if e not in before]
        assert added == [(study.base_id(m), 0, bench) for m in entry["models"]]
        assert set(before) <= set(after)


def test_base_on_one_table_touches_only_its_benchmark():
    on = study.all_evaluations(_with_base("table1"))
    off = study.all_evaluations(CONFIG)
    bench = CONFIG["tasks"][CONFIG["study"]["table1"]["task"]]["benchmark"]
    assert sorted(set(on) - set(off)) == sorted(
        {(study.base_id(m), 0, bench) for m in CONFIG["study"]["table1"]["models"]})


def test_base_model_inverts_base_id():
    assert study.base_model(study.base_id("smollm2-135m")) == "smollm2-135m"
    assert study.base_model("tiny-llama__code__lora-r8__f100__e2") is None


def test_base_outside_the_tables_is_refused_naming_the_field():
    config = copy.deepcopy(CONFIG)
    config["study"]["figure6"]["base"] = True
    with pytest.raises(ValueError, match=r"study\.figure6\.base: only Tables 1-2"):
        study.check_config(config)
    study.check_config(_with_base("table1"))
