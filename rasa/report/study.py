"""Which runs each table and figure reads, and how the paper names things.

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

#: Row order of Tables 1–2 (the paper's): FFT, VeRA, then per rank these methods in this order.
METHOD_ORDER = ("fft", "vera", "lora", "mora", "olora", "adalora", "prilora", "rasa")
#: The paper's spelling of each method (also the ``method`` column of paper_numbers.csv).
METHOD_NAMES = {
    "fft": "FFT", "vera": "VeRA", "lora": "LoRA", "mora": "MoRA", "olora": "OLoRA",
    "adalora": "AdaLoRA", "prilora": "PriLoRA", "rasa": "RaSA",
}
#: Methods whose row is not part of a rank group (the paper's FFT and VeRA rows).
OWN_ROW_METHODS = ("fft", "vera")
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
    """The untrained model's pseudo run id in metrics.csv (epoch 0, forgetting only)."""
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
