"""Every figure draws the values its data function selects (tiny default and paper grid, strict
and partial); rendering is deterministic; the CLI renders what the Snakemake rules ask for."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rasa.report import TARGETS, MissingResultsError, render
from rasa.report import figure_data as fd
from rasa.report.entries import entry_runs, load_config
from rasa.report.figures import _BUILDERS, FIGURES, render_figure, shares_axis
from rasa.report.results import Missing, Results
from rasa.report.style import plt, style
from rasa.runs import parse_run_id, run_id

from report_synthetic import paper_grid_config, write_results

REPO = Path(__file__).resolve().parents[2]
#: Each figure's data function and the column it plots on the y axis.
DATA = {"figure2": (fd.figure2_data, "error"), "figure3": (fd.figure3_data, "error"),
        "figure4": (fd.figure4_data, "loss"), "figure5": (fd.figure5_data, "accuracy"),
        "figure6": (fd.figure6_data, "accuracy"), "figure7": (fd.figure7_data, "accuracy"),
        "mechanism": (fd.mechanism_data, "loss")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    config = load_config(REPO / "configs" / "config.yaml")
    return config, write_results(config, tmp_path_factory.mktemp("tiny"), paper_values=False)


def draw(name: str, config: dict, root, partial: bool = False):
    """The figure (not saved), its y values on every axis (lines and bars), its legend texts and
    suptitle; the figure is closed."""
    with style():
        fig = _BUILDERS[name](config, Results(root), Missing(name, partial))
        ys = [float(y) for ax in fig.axes for line in ax.get_lines() for y in line.get_ydata()]
        ys += [float(p.get_height()) for ax in fig.axes for p in ax.patches]
        legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        labels = [t.get_text() for lg in legends for t in lg.get_texts()]
        title = fig._suptitle.get_text()
        plt.close(fig)
    return ys, labels, title


def assert_draws_its_data(name: str, config: dict, root) -> list[str]:
    fn, col = DATA[name]
    data = fn(config, Results(root), Missing(name, True))
    assert len(data), name
    ys, labels, title = draw(name, config, root)
    absent = [v for v in data[col] if not any(math.isclose(v, y, rel_tol=1e-12) for y in ys)]
    assert not absent, (name, absent[:5])
    assert labels and "partial" not in title, name
    return labels


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_draws_its_data_tiny(tiny, name):
    config, root = tiny
    assert_draws_its_data(name, config, root)


def test_paper_grid_figures_with_overlays(tmp_path):
    config = paper_grid_config()
    root = write_results(config, tmp_path)
    for name in ("figure4", "figure5", "figure6", "figure7"):
        labels = assert_draws_its_data(name, config, root)
        assert any(lab.startswith("paper") for lab in labels), name
        if name == "figure4":  # synthetic losses are the paper's: one shared axis
            assert not any("right axis" in lab for lab in labels)


def test_figures_are_deterministic(tiny, tmp_path):
    config, root = tiny
    a = render_figure("figure6", config, root, out_dir=tmp_path / "a")
    b = render_figure("figure6", config, root, out_dir=tmp_path / "b")
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes(), x.name


def test_partial_figures_with_half_the_runs(tiny, tmp_path):
    config, root = tiny
    half = tmp_path / "half"
    shutil.copytree(root, half)
    runs = pd.read_csv(half / "runs.csv")
    gone = set(runs["run_id"].iloc[::2])
    for name in ("metrics.csv", "losses.csv"):
        df = pd.read_csv(half / name)
        df[~df["run_id"].isin(gone)].to_csv(half / name, index=False)
    (half / "recon.csv").unlink()
    with pytest.raises(MissingResultsError) as exc:
        render_figure("figure4", config, half)
    assert "losses.csv: no steps for run" in str(exc.value)
    assert any(g in str(exc.value) for g in gone)
    with pytest.raises(MissingResultsError, match="recon.csv: file not found"):
        render_figure("figure2", config, half)
    for name in TARGETS:
        for p in render(name, config, half, partial=True):
            assert p.stat().st_size > 0


def test_partial_from_nothing(tmp_path):
    config = load_config(REPO / "configs" / "config.yaml")
    for name in FIGURES:
        title = draw(name, config, tmp_path, partial=True)[2]
        assert "[partial:" in title, name
        with pytest.raises(MissingResultsError, match="file not found"):
            render_figure(name, config, tmp_path)


def test_shares_axis():
    assert shares_axis([0.8, 0.7], [0.88, 0.65])
    assert not shares_axis([1.9, 1.5], [0.88, 0.65])          # tiny losses vs the paper's
    assert not shares_axis([0.001, 0.002], [297300, 293600])  # recon errors
    assert not shares_axis([2.0, 4.5], [26.7, 29.1])          # accuracies of a tiny model
    assert shares_axis([], [1, 2]) and shares_axis([3.0], [3.0])


def test_epoch_losses_mean_by_ceil(tmp_path):
    pd.DataFrame({"run_id": ["x"] * 4, "step": [1, 2, 3, 4], "epoch": [0.5, 1.0, 1.5, 2.0],
                  "loss": [4.0, 2.0, 1.0, 3.0]}).to_csv(tmp_path / "losses.csv", index=False)
    s = Results(tmp_path).epoch_losses("x", 3, m := Missing("t", True))
    assert s.to_dict() == {1: 3.0, 2: 2.0}
    assert m.items and "epoch(s) 3" in m.items[0]


def test_study_expansion_uses_run_ids():
    config = load_config(REPO / "configs" / "config.yaml")
    t1 = entry_runs(config, "table1")
    assert [r.id for r in t1] == [
        "tiny-llama__code__vera-r256__f100__e2", "tiny-llama__code__lora-r8__f100__e2",
        "tiny-llama__code__rasa-r8-k1__f100__e2"]
    assert all(run_id(parse_run_id(r.id)) == r.id for r in t1)
    f4 = entry_runs(config, "figure4")
    assert {r.spec.method for r in f4} == {"lora", "rasa"} and {r.spec.task for r in f4} == {"code", "math"}
    f7 = entry_runs(config, "figure7")
    assert sorted(r.spec.fraction for r in f7) == [0.25, 0.25, 0.5, 0.5, 1.0, 1.0]
    assert entry_runs(config, "table2")[0].id == "tiny-llama__math__fft__f100__e2"


def test_cli_as_the_snakemake_rules_call_it(tiny, tmp_path):
    """Per-target staging dir for runs/metrics/losses, recon/mechanism in results/, output
    elsewhere, config inline as JSON; an empty (header-less) gathered CSV is an empty table."""
    import json

    from rasa.report.__main__ import main

    config, root = tiny
    staging, analysis, out = tmp_path / "staging", tmp_path / "results", tmp_path / "out"
    staging.mkdir()
    analysis.mkdir()
    for name in ("runs.csv", "metrics.csv", "losses.csv"):
        shutil.copy(root / name, staging / name)
    for name in ("recon.csv", "mechanism.csv"):
        shutil.copy(root / name, analysis / name)
    cfg = json.dumps(config)
    assert main(["--config-json", cfg, "--results", str(staging), "--analysis-dir", str(analysis),
                 "--out", str(out), "--only", "table1", "figure2", "mechanism"]) == 0
    assert (out / "tables" / "table1_delta.md").exists() and (out / "figures" / "figure2.pdf").exists()
    (staging / "losses.csv").write_text("\n")
    assert main(["--config-json", cfg, "--results", str(staging), "--out", str(out),
                 "--only", "figure4"]) == 2
    assert main(["--config-json", cfg, "--results", str(staging), "--out", str(out),
                 "--only", "figure4", "--partial"]) == 0


def test_captions_for_every_output_parse_as_rst():
    import io

    import docutils.core

    names = list(TARGETS) + ["runs_csv", "metrics_csv", "losses_csv", "recon_csv", "mechanism_csv"]
    for name in names:
        path = REPO / "workflow" / "report" / f"{name}.rst"
        text = path.read_text(encoding="utf-8")
        assert "{{" not in text and "{%" not in text  # Snakemake renders captions with Jinja2
        err = io.StringIO()
        docutils.core.publish_parts(text, writer="html",
                                    settings_overrides={"warning_stream": err, "report_level": 1})
        assert not err.getvalue(), (name, err.getvalue())
