"""The paper's own numbers, read from the reference data files beside this module.

``paper_numbers.csv`` holds every number the paper
reports (table cells, figure data labels, numbers quoted in the text, values digitised from
figures), one per row, with its ``source``. ``paper_marks.csv`` records which Table 1–2 cells the
paper sets in *italics* (best per rank) or **bold** (best per model). The report code reads these
files; no paper number is typed into code.

Columns of ``paper_numbers.csv``: ``table`` (table1, table2, figure6, figure4_digitized, ...),
``model`` (the paper's model name, e.g. ``Llama-3.1-8B``, ``Mistral-0.3-7B``), ``task``
(``code_humanevalplus``, ``math_MATH``, ``code_train``, ``recon_W_up``, ...), ``method`` (the
paper's spelling: LoRA, RaSA, VeRA, ...), ``rank`` (``8``, ``1024``, ``full``, ...), ``metric``
(``pass@1_best``, ``acc_last``, ``train_time_h``, ``trainable_params_M``, ...), ``value`` (kept as
text: one cell is ``7-8B``), ``source``.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources

import pandas as pd

PAPER_NUMBERS = "paper_numbers.csv"
PAPER_MARKS = "paper_marks.csv"


def _read(name: str) -> pd.DataFrame:
    with resources.files("rasa.report").joinpath(name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


@cache
def _numbers() -> pd.DataFrame:
    df = _read(PAPER_NUMBERS)
    df["number"] = pd.to_numeric(df["value"], errors="coerce")
    return df


def paper_numbers() -> pd.DataFrame:
    """All rows of ``paper_numbers.csv`` as text, plus ``number`` (float, NaN where not numeric)."""
    return _numbers().copy()


@cache
def _marks() -> pd.DataFrame:
    return _read(PAPER_MARKS)


def paper_marks() -> pd.DataFrame:
    """``paper_marks.csv``: table, model, method, rank, metric, mark (italic|bold|bold+italic)."""
    return _marks().copy()


def paper_rows(table: str, **where: str) -> pd.DataFrame:
    """Rows of one ``table`` (e.g. ``figure6``) filtered by equality on other columns."""
    df = _numbers()
    sel = df["table"] == table
    for col, val in where.items():
        sel &= df[col] == str(val)
    return df[sel].copy()


def paper_value(table: str, model: str, method: str, rank: str, metric: str, task: str | None = None):
    """One reference cell: a float, the paper's text where it is not a number (``7-8B``), or
    ``None`` when the paper does not report it."""
    where = {"model": model, "method": method, "rank": str(rank), "metric": metric}
    if task is not None:
        where["task"] = task
    rows = paper_rows(table, **where)
    if rows.empty:
        return None
    if len(rows) > 1:
        raise ValueError(f"{PAPER_NUMBERS}: several rows for {table} {where}")
    num = rows["number"].iloc[0]
    return rows["value"].iloc[0] if math.isnan(num) else float(num)
