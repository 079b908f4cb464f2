"""Which runs each table and figure reads, derived from the config's ``study:`` section.

Run ids come only from :func:`rasa.runs.run_id`. The expansion rules (the same as the workflow's):

- ``fft`` runs have r = k = 0; ``vera`` runs use their own rank ``methods.vera.r`` (one run, not
  one per rank); ``rasa`` runs use ``k = study.<entry>.k`` if given, else ``default_k(r)``;
  every other method has one run per rank with k = 0.
- ``fraction`` is 1.0 unless the entry lists ``fractions`` (Figure 7).
- ``from: [table1, table2]`` (Figures 4–5) takes the runs of those entries, keeping ``methods``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from rasa.runs import RunSpec, default_k, run_id

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
    return f"{model}__base"


@dataclass(frozen=True)
class Run:
    """A run a table or figure reads: its spec, id, and which study entry asked for it."""

    spec: RunSpec
    entry: str

    @property
    def id(self) -> str:
        return run_id(self.spec)


def _entry(config: dict, name: str) -> dict:
    study = config.get("study") or {}
    if name not in study:
        raise KeyError(f"config has no study.{name} entry")
    return study[name]


def entry_runs(config: dict, name: str) -> list[Run]:
    """Every run of ``study.<name>``, in table order (model, method order, rank, fraction)."""
    e = _entry(config, name)
    if "from" in e:
        keep = set(e.get("methods") or METHOD_ORDER)
        out: list[Run] = []
        seen = set()
        for src in e["from"]:
            for run in entry_runs(config, src):
                if run.spec.method in keep and run.spec not in seen:
                    seen.add(run.spec)
                    out.append(Run(run.spec, name))
        return out
    methods = sorted(e["methods"], key=METHOD_ORDER.index)
    fractions = e.get("fractions") or [1.0]
    out = []
    for model in e["models"]:
        for fraction in fractions:
            for method in methods:
                for r, k in _ranks(config, e, method):
                    spec = RunSpec(model=model, task=e["task"], method=method, r=r, k=k,
                                   fraction=float(fraction), epochs=int(e["epochs"]))
                    out.append(Run(spec, name))
    return out


def _ranks(config: dict, e: dict, method: str) -> list[tuple[int, int]]:
    if method == "fft":
        return [(0, 0)]
    if method == "vera":
        own = (config.get("methods", {}).get("vera") or {}).get("r")
        if own is not None:
            return [(int(own), 0)]
    out = []
    for r in e["ranks"]:
        k = int(e.get("k", default_k(int(r)))) if method == "rasa" else 0
        out.append((int(r), k))
    return out
