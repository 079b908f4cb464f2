"""The paper's training times (the Time column of Tables 1–2), looked up by model, task, method and rank.

The paper reports wall-clock hours of one training run (8 epochs on the full training set) on
1 node × 8 A100-40G. Only the 7–8B models on the tables' methods and ranks have a time; anything
else (full fine-tuning, r = 4, the 70B and MoE models) returns ``None``.
"""

from __future__ import annotations

from rasa.report.reference import paper_rows


def train_hours(paper_model: str, task: str, method: str, r: int) -> float | None:
    """Hours the paper reports for training ``method`` at rank ``r`` on ``task``, or ``None``.

    ``paper_model`` is the paper's spelling (``Llama-3.1-8B``, ``Mistral-0.3-7B``: a model's
    ``paper_name`` in the config); ``task`` the config's task (``code``, ``math``); ``method`` the
    method's name in :mod:`rasa.methods` (``lora``; any case); ``r`` the rank (VeRA: 1024).
    """
    rows = _time_rows(paper_model)
    rows = rows[rows["task"].str.startswith(f"{task}_") & (rows["method"].str.lower() == method.lower())
                & (rows["rank"] == str(r))]
    if rows.empty:
        return None
    if len(rows) > 1:
        raise ValueError(f"paper_numbers.csv: several train_time_h rows for {paper_model} {task} {method} r={r}")
    return float(rows["number"].iloc[0])


def _time_rows(paper_model: str):
    """Every train_time_h row of one model, from both tables."""
    import pandas as pd

    return pd.concat([paper_rows(t, model=paper_model, metric="train_time_h") for t in ("table1", "table2")])
