"""Tables 1–2 with `study.<table>.base: true`: a "Base model" row (epoch 0) above the methods,
from synthetic results; off (the paper's layout) by default."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from rasa.report import MissingResultsError
from rasa.report.tables import render_table

from report_synthetic import base_scores, paper_grid_config, write_results


def _base_config(base: bool) -> dict:
    config = copy.deepcopy(paper_grid_config(epochs=2))
    config["benchmarks"]["humanevalplus"]["base_prompt"] = "chat"
    for name in ("table1", "table2"):
        config["study"][name]["base"] = base
    return config


def _expected(model: str, table: str, metric: str, scorer: str) -> float:
    bench = {"table1": "humanevalplus", "table2": "math"}[table]
    [value] = [v for _, e, b, m, s, v in base_scores(f"{model}__base", table)
               if (e, b, m, s) == (0, bench, metric, scorer)]
    return value


@pytest.mark.parametrize("table, columns", [
    ("table1", {"P@1": ("pass@1", "plus"), "P@10": ("pass@10", "plus")}),
    ("table2", {"ACC": ("accuracy", "paper")}),
])
def test_base_row_is_epoch_zero_above_the_methods(tmp_path, table, columns):
    config = _base_config(True)
    write_results(config, tmp_path)
    render_table(table, config, tmp_path)
    ours = pd.read_csv(tmp_path / "tables" / f"{table}.csv")
    base = ours.iloc[0]
    assert base["Method"] == "Base model" and pd.isna(base["r"])
    assert list(ours["Method"]).count("Base model") == 1
    for model, label in (("llama-8b", "Llama-3.1-8B"), ("mistral-7b", "Mistral-0.3-7B")):
        for header, (metric, scorer) in columns.items():
            value = _expected(model, table, metric, scorer)
            assert base[f"{label} {header} BEST"] == pytest.approx(value)
            assert base[f"{label} {header} LAST"] == pytest.approx(value)
        assert pd.isna(base[f"{label} Time (h)"])
    assert pd.isna(base["# Trainable Param. (M)"])
    md = (tmp_path / "tables" / f"{table}.md").read_text()
    base_line = next(line for line in md.splitlines() if "| Base model |" in line)
    assert "*" not in base_line  # never marked
    assert "Base model: each model untrained" in md
    if table == "table1":
        assert "its chat template" in md  # the configured base prompt is stated
    delta = pd.read_csv(tmp_path / "tables" / f"{table}_delta.csv")
    assert delta.iloc[0]["Method"] == "Base model"
    assert delta.iloc[0].drop(["r", "Method"]).isna().all()  # no counterpart in the paper
    paper = pd.read_csv(tmp_path / "tables" / f"{table}_paper.csv")
    assert "Base model" not in set(paper["Method"])


def test_base_row_is_off_by_default_and_missing_base_results_are_named(tmp_path):
    write_results(_base_config(False), tmp_path)
    render_table("table1", _base_config(False), tmp_path)
    assert "Base model" not in set(pd.read_csv(tmp_path / "tables" / "table1.csv")["Method"])
    with pytest.raises(MissingResultsError, match=r"no humanevalplus pass@1 .* llama-8b__base at epoch\(s\) 0"):
        render_table("table1", _base_config(True), tmp_path)


def test_pass_at_10_is_not_computed_from_one_sample_and_not_counted_missing(tmp_path):
    """One sample per problem (greedy, as the rehearsal) yields pass@1 only: Table 1's P@10
    columns are "—" with a note saying why, not a missing input that stops the report."""
    config = _base_config(True)
    config["benchmarks"]["humanevalplus"]["n_samples"] = 1
    write_results(config, tmp_path)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    metrics[metrics["metric"] != "pass@10"].to_csv(tmp_path / "metrics.csv", index=False)
    render_table("table1", config, tmp_path)
    ours = pd.read_csv(tmp_path / "tables" / "table1.csv")
    p10 = [c for c in ours.columns if " P@10 " in c]
    p1 = [c for c in ours.columns if " P@1 " in c]
    assert len(p10) == 4 and ours[p10].isna().all().all()
    assert len(p1) == 4 and ours[p1].notna().all().all()
    md = (tmp_path / "tables" / "table1.md").read_text()
    assert "pass@10: not computed (benchmarks.humanevalplus.n_samples = 1" in md
    assert "missing (partial rendering)" not in md
