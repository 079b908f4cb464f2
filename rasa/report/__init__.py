"""The report stage: Tables 1–2 and Figures 2–7 (+ the mechanism check) from ``results/``.

Entry points:

- ``python -m rasa.report --config configs/config.yaml --results results [--only ...] [--partial]``
- :func:`render` (one target, for a Snakemake rule), :func:`render_all`, and :data:`TARGETS`
  (each target's input CSVs and output files, to declare a rule's ``input:``/``output:``).

The paper's numbers are read from ``paper_numbers.csv`` / ``paper_marks.csv`` in this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rasa.report.results import MissingResultsError  # noqa: F401  (public)


@dataclass(frozen=True)
class Target:
    name: str
    inputs: tuple[str, ...]     # CSVs under the results dir
    outputs: tuple[str, ...]    # files under the results dir

    def input_paths(self, results: str | Path = "results") -> list[str]:
        return [str(Path(results) / p) for p in self.inputs]

    def output_paths(self, results: str | Path = "results") -> list[str]:
        return [str(Path(results) / p) for p in self.outputs]


def _table_outputs(stem: str, views) -> tuple[str, ...]:
    return tuple(f"tables/{stem}{v}.{ext}" for v in views for ext in ("csv", "md", "tex"))


def _figure_outputs(name: str) -> tuple[str, ...]:
    return (f"figures/{name}.png", f"figures/{name}.pdf")


TARGETS: dict[str, Target] = {
    "table1": Target("table1", ("runs.csv", "metrics.csv"),
                     _table_outputs("table1", ("", "_paper", "_delta"))),
    "table2": Target("table2", ("runs.csv", "metrics.csv"),
                     _table_outputs("table2", ("", "_paper", "_delta", "_corrected"))),
    "figure2": Target("figure2", ("recon.csv",), _figure_outputs("figure2")),
    "figure3": Target("figure3", ("recon.csv",), _figure_outputs("figure3")),
    "figure4": Target("figure4", ("losses.csv",), _figure_outputs("figure4")),
    "figure5": Target("figure5", ("metrics.csv",), _figure_outputs("figure5")),
    "figure6": Target("figure6", ("metrics.csv",), _figure_outputs("figure6")),
    "figure7": Target("figure7", ("metrics.csv",), _figure_outputs("figure7")),
    "mechanism": Target("mechanism", ("mechanism.csv",), _figure_outputs("mechanism")),
}


def render(target: str, config: dict, results: str | Path = "results", partial: bool = False,
           out: str | Path | None = None, analysis: str | Path | None = None) -> list[Path]:
    """Render one target (``table1`` ... ``figure7``, ``mechanism``); returns the files written.

    ``results``: the directory holding runs.csv, metrics.csv, losses.csv (for a Snakemake rule,
    the staging directory the target's inputs were gathered into); ``out``: where ``tables/`` and
    ``figures/`` are written (default: ``results``); ``analysis``: where recon.csv and
    mechanism.csv are read (default: ``results``). Raises :class:`MissingResultsError` naming
    every missing input unless ``partial``."""
    if target not in TARGETS:
        raise KeyError(f"unknown report target {target!r}; one of {', '.join(TARGETS)}")
    out = Path(out) if out else Path(results)
    if target.startswith("table"):
        from rasa.report.tables import render_table
        return render_table(target, config, results, partial, out / "tables")
    from rasa.report.figures import render_figure
    return render_figure(target, config, results, partial, out / "figures", analysis)


def render_all(config: dict, results: str | Path = "results", partial: bool = False,
               only=None, out: str | Path | None = None,
               analysis: str | Path | None = None) -> list[Path]:
    """Render every target (or those in ``only``). Without ``partial`` the first target with
    missing inputs raises; with it, everything renders from whatever exists."""
    paths: list[Path] = []
    for name in (only or TARGETS):
        paths += render(name, config, results, partial, out, analysis)
    return paths
