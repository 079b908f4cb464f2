"""rasa.report.figure_data: the rows each figure plots, from small hand-made CSVs (exact values)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rasa.report.entries import load_config
from rasa.report.figure_data import (
    figure2_data,
    figure3_data,
    figure4_data,
    figure5_data,
    figure5_quoted,
    figure6_data,
    figure7_data,
    forgetting_gaps,
    mechanism_data,
)
from rasa.report.results import CONTRACT, Missing, Results

REPO = Path(__file__).resolve().parents[2]
LORA = "tiny-llama__{task}__lora-r{r}__f{f}__e2"
RASA = "tiny-llama__{task}__rasa-r{r}-k1__f{f}__e2"


@pytest.fixture(scope="module")
def config():
    """The tiny study: tiny-llama (≙ Llama-3.1-8B) code and math at r=8, 2 epochs; Figure 6 at
    r=4 with tiny-mixtral (≙ Mixtral-8x7B); recon r=8, k=1, ranks 8/16/32, ks 0..8."""
    return load_config(REPO / "configs" / "config.yaml")


def write(root: Path, name: str, rows: list[tuple]) -> None:
    pd.DataFrame(rows, columns=CONTRACT[name]).to_csv(root / name, index=False)


def records(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return [tuple(x) for x in df[columns].itertuples(index=False)]


def test_figure2_rows_modules_and_paper_points(config, tmp_path):
    m = "tiny-llama"
    write(tmp_path, "recon.csv", [
        (m, "q_proj", "figure2", 8, 1, "rasa", "theorem", 1, 0.5),
        (m, "q_proj", "figure2", 8, 1, "rasa", "theorem", 0, 0.6),
        (m, "q_proj", "figure2", 8, 1, "rasa", "paper", 0, 0.9),
        (m, "q_proj", "figure2", 8, 0, "lora", "svd", 0, 0.55),
        (m, "up_proj", "figure2", 8, 1, "rasa", "theorem", 0, 2.0),
        (m, "up_proj", "figure2", 8, 1, "rasa", "theorem", 2, 1.5),
        (m, "up_proj", "figure2", 8, 2, "rasa", "theorem", 0, 9.0),    # other k: not plotted
        (m, "up_proj", "figure2", 8, 0, "lora", "svd", 0, 1.8),
        (m, "o_proj", "figure2", 8, 0, "lora", "svd", 0, 0.1),          # no RaSA curve
        ("other", "k_proj", "figure2", 8, 1, "rasa", "theorem", 0, 7.0),  # other model
        (m, "q_proj", "figure3", 8, 1, "rasa", "theorem", 30, 7.0),     # other analysis
    ])
    missing = Missing("figure2", True)
    d = figure2_data(config, Results(tmp_path), missing)
    assert list(d["module"].cat.categories) == ["up_proj", "q_proj", "o_proj"]  # the paper's order
    cols = ["module", "source", "method", "init", "iteration", "error"]
    assert records(d[d["source"] == "ours"], cols) == [
        ("up_proj", "ours", "rasa", "theorem", 0, 2.0), ("up_proj", "ours", "rasa", "theorem", 2, 1.5),
        ("up_proj", "ours", "lora", "", 0, 1.8),
        ("q_proj", "ours", "rasa", "paper", 0, 0.9),                      # 'paper' start before 'theorem'
        ("q_proj", "ours", "rasa", "theorem", 0, 0.6), ("q_proj", "ours", "rasa", "theorem", 1, 0.5),
        ("q_proj", "ours", "lora", "", 0, 0.55),
        ("o_proj", "ours", "lora", "", 0, 0.1)]
    # the paper's digitised W_up and W_q points; RaSA's last point at our last iteration (2)
    assert records(d[d["source"] == "paper"], ["module", "method", "iteration", "error", "paper_key"]) == [
        ("up_proj", "lora", 2, 297300.0, "LoRA_MRE_eq9"), ("up_proj", "rasa", 2, 293600.0, "RaSA_k1_iter50"),
        ("up_proj", "rasa", 1, 316200.0, "RaSA_k1_iter1"),
        ("q_proj", "lora", 2, 55600.0, "LoRA_MRE_eq9"), ("q_proj", "rasa", 2, 54200.0, "RaSA_k1_iter50"),
        ("q_proj", "rasa", 1, 63400.0, "RaSA_k1_iter1")]
    assert [x.split(": ", 1)[1] for x in missing.items] == [
        "no figure2 RaSA rows for tiny-llama o_proj r=8 k=1"]


def test_figure3_means_over_modules_and_missing_points(config, tmp_path):
    m = "tiny-llama"
    rows = [(m, mod, "figure3", 8, 0, "lora", "svd", 0, e) for mod, e in (("q_proj", 1.0), ("k_proj", 2.0))]
    rows += [(m, mod, "figure3", 8, k, "rasa", "theorem", 30, e)
             for mod, k, e in (("q_proj", 1, 0.5), ("k_proj", 1, 1.5), ("q_proj", 2, 0.25),
                               ("k_proj", 2, 0.75), ("q_proj", 0, 1.0), ("k_proj", 0, 2.0))]
    rows += [(m, "q_proj", "figure3", 16, 1, "rasa", "theorem", 30, 0.125),
             (m, "q_proj", "figure3", 16, 3, "rasa", "theorem", 30, 5.0)]  # k=3 not in ks
    write(tmp_path, "recon.csv", rows)
    missing = Missing("figure3", True)
    d = figure3_data(config, Results(tmp_path), missing)
    assert records(d, ["r", "method", "init", "k", "error"]) == [
        (8, "rasa", "theorem", 0, 1.5), (8, "rasa", "theorem", 1, 1.0), (8, "rasa", "theorem", 2, 0.5),
        (8, "lora", "", 0, 1.5), (16, "rasa", "theorem", 1, 0.125)]
    assert [x.split(": ", 1)[1] for x in missing.items] == [
        "no figure3 RaSA rows for tiny-llama r=8 k=[4, 6, 8]",
        "no figure3 RaSA rows for tiny-llama r=16 k=[0, 2, 4, 6, 8]",
        "no figure3 LoRA rows for tiny-llama r=16",
        "no figure3 rows for tiny-llama r=32"]


def test_figure4_epoch_means_and_the_paper_curve_of_the_same_run(config, tmp_path):
    lora = LORA.format(task="code", r=8, f=100)
    write(tmp_path, "losses.csv", [(lora, 1, 0.5, 4.0), (lora, 2, 1.0, 2.0), (lora, 3, 1.5, 1.0),
                                   (lora, 4, 2.0, 3.0), ("someone-else", 1, 1.0, 9.0)])
    missing = Missing("figure4", True)
    d = figure4_data(config, Results(tmp_path), missing)
    cols = ["task", "method", "r", "epoch", "loss"]
    assert records(d[d["source"] == "ours"], cols) == [("code", "lora", 8, 1, 3.0), ("code", "lora", 8, 2, 2.0)]
    paper = d[d["source"] == "paper"]
    # Llama-3.1-8B, r=8: the paper's digitised code and math curves, 8 epochs each, in epoch order
    assert records(paper[paper["method"] == "lora"].head(2), cols) == [
        ("code", "lora", 8, 1, 0.879), ("code", "lora", 8, 2, 0.838)]
    assert paper.groupby(["task", "method"]).size().to_dict() == {
        ("code", "lora"): 8, ("code", "rasa"): 8, ("math", "lora"): 8, ("math", "rasa"): 8}
    assert all(g["epoch"].tolist() == list(range(1, 9)) for _, g in paper.groupby("run_id"))
    assert len(missing.items) == 3 and all("no steps for run" in x for x in missing.items)


def _forgetting(rid: str, epoch: int, value: float) -> tuple:
    return (rid, epoch, "forgetting_avg", "accuracy", "lm-eval", value)


def test_figure5_base_point_runs_and_quotes(config, tmp_path):
    lora, rasa = LORA.format(task="math", r=8, f=100), RASA.format(task="math", r=8, f=100)
    write(tmp_path, "metrics.csv", [
        _forgetting("tiny-llama__base", 0, 60.0), _forgetting(lora, 1, 58.0), _forgetting(lora, 2, 57.0),
        _forgetting(rasa, 2, 59.5), _forgetting(rasa, 3, 1.0),        # epoch 3 > E: not plotted
        (lora, 2, "math", "accuracy", "paper", 5.0)])                   # another metric
    missing = Missing("figure5", True)
    d = figure5_data(config, Results(tmp_path), missing)
    cols = ["task", "method", "epoch", "accuracy", "last"]
    assert records(d, cols) == [
        ("code", "base", 0, 60.0, False),                               # code panel first
        ("math", "base", 0, 60.0, False), ("math", "lora", 1, 58.0, False), ("math", "lora", 2, 57.0, True),
        ("math", "rasa", 2, 59.5, True)]
    assert sum("epoch(s) 1" in x and rasa in x for x in missing.items) == 1
    q = figure5_quoted(config)  # the paper quotes Mistral-0.3-7B at epoch 8: none of our panels
    assert records(q, ["model", "task", "method", "epoch", "accuracy", "placement"]) == [
        ("Mistral-0.3-7B", "code", "LoRA", 8, 58.7, "side"), ("Mistral-0.3-7B", "math", "LoRA", 8, 52.8, "side"),
        ("Mistral-0.3-7B", "code", "RaSA", 8, 64.6, "side"), ("Mistral-0.3-7B", "math", "RaSA", 8, 66.5, "side")]


def test_forgetting_gaps_mean_over_panels():
    rows = [("a", "code", "lora", 8, 50.0), ("a", "code", "lora", 32, 53.0),
            ("a", "math", "lora", 8, 40.0), ("a", "math", "lora", 32, 39.0),
            ("a", "code", "rasa", 8, 50.0)]                             # one rank only: no gap
    ours = pd.DataFrame([dict(zip(["model", "task", "method", "r", "accuracy"], x), last=True, epoch=2,
                              run_id="x") for x in rows])
    ours.loc[len(ours)] = {"model": "a", "task": "code", "method": "lora", "r": 8, "accuracy": 0.0,
                           "last": False, "epoch": 1, "run_id": "x"}    # not the last epoch
    g = forgetting_gaps(ours)
    assert g["method"].tolist() == ["lora"]
    assert g["ours"].iloc[0] == 2.0 and g["pairs"].iloc[0] == [(8, 32)] and g["paper"].iloc[0] == 2.83


def test_figure6_and_7_last_epoch_accuracy_beside_the_paper(config, tmp_path):
    acc = [(LORA.format(task="math", r=4, f=100), 2, 3.5), (RASA.format(task="math", r=4, f=100), 1, 9.0),
           (LORA.format(task="math", r=8, f=25), 2, 1.25), (LORA.format(task="math", r=8, f=50), 2, 2.5),
           (RASA.format(task="math", r=8, f=100), 2, 4.0)]
    write(tmp_path, "metrics.csv", [(rid, e, "math", "accuracy", "paper", v) for rid, e, v in acc])
    missing = Missing("figure6", True)
    d6 = figure6_data(config, Results(tmp_path), missing)
    assert records(d6[d6["source"] == "ours"], ["model", "method", "r", "accuracy"]) == [
        ("tiny-llama", "lora", 4, 3.5)]                                 # RaSA has epoch 1 only
    paper = d6[d6["source"] == "paper"]
    assert len(paper) == 8 and records(paper.head(2), ["model", "method", "accuracy"]) == [
        ("Llama-3.1-8B", "lora", 27.8), ("Llama-3.1-8B", "rasa", 28.9)]
    assert len(missing.items) == 3                                      # rasa r=4 and both tiny-mixtral
    d7 = figure7_data(config, Results(tmp_path), Missing("figure7", True))
    assert records(d7, ["source", "model", "method", "data_pct", "accuracy"]) == [
        ("ours", "tiny-llama", "lora", 25.0, 1.25), ("ours", "tiny-llama", "lora", 50.0, 2.5),
        ("ours", "tiny-llama", "rasa", 100.0, 4.0),
        ("paper", "tiny-llama", "lora", 100.0, 26.7), ("paper", "tiny-llama", "rasa", 100.0, 29.1)]


def test_mechanism_curves_sorted(config, tmp_path):
    write(tmp_path, "mechanism.csv", [("rasa", 4, 1, 5, 0.5, 10), ("lora", 4, 0, 5, 0.7, 8),
                                      ("rasa", 4, 1, 0, 2.0, 10), ("lora", 4, 0, 0, 2.5, 8)])
    d = mechanism_data(config, Results(tmp_path), Missing("mechanism", True))
    assert records(d, ["method", "step", "loss"]) == [("lora", 0, 2.5), ("lora", 5, 0.7),
                                                       ("rasa", 0, 2.0), ("rasa", 5, 0.5)]
    missing = Missing("mechanism", True)
    assert mechanism_data(config, Results(tmp_path / "none"), missing).empty
    assert [x.split(": ", 1)[1] for x in missing.items] == ["file not found"]
