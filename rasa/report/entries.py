"""The study entries a table or figure reads: their runs, and the paper's names for models and tasks.

The grid is expanded by :mod:`rasa.study` (the workflow's one expansion; run ids from
:func:`rasa.runs.run_id`): ``fft`` has r = k = 0; ``vera`` uses its own rank ``methods.vera.r``;
``rasa`` uses ``k = study.<entry>.k`` or ``default_k(r)``; ``fractions`` only for Figure 7;
``from: [table1, table2]`` (Figures 4–5) takes those entries' runs of the listed ``methods``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from rasa import study as grid
from rasa.runs import RunSpec, run_id

# Methods' order, spelling and rows are entries of rasa.method_registry.
TASK_NAMES = {"code": "Code", "math": "Math"}


def load_config(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def paper_name(config: dict, model: str) -> str:
    """The paper's column a config model stands in for (``models.<name>.paper_name``)."""
    return (config.get("models", {}).get(model) or {}).get("paper_name", model)


def model_label(config: dict, model: str) -> str:
    """``tiny-llama (≙ Llama-3.1-8B)``, or just the name when it *is* the paper's model."""
    pn = paper_name(config, model)
    return model if pn == model else f"{model} (≙ {pn})"


def base_run_id(model: str) -> str:
    """The untrained model's pseudo run id in metrics.csv (epoch 0: Figure 5's forgetting, and the
    tables' base rows with ``study.<table>.base``)."""
    return grid.base_id(model)


@dataclass(frozen=True)
class Run:
    """A run a table or figure reads: its spec, id, and which study entry asked for it."""

    spec: RunSpec
    entry: str

    @property
    def id(self) -> str:
        return run_id(self.spec)


def entry_runs(config: dict, name: str) -> list[Run]:
    """Every run of ``study.<name>`` (:func:`rasa.study.target_runs`, the workflow's own
    expansion), each once, tagged with ``name``."""
    if name not in (config.get("study") or {}):
        raise KeyError(f"config has no study.{name} entry")
    return [Run(spec, name) for spec in dict.fromkeys(grid.target_runs(config, name))]
