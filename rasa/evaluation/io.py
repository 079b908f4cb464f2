"""Result files: the metrics schema shared by every benchmark, written atomically."""

from __future__ import annotations

from pathlib import Path

from rasa.io import write_csv_atomic as _write_csv_atomic

METRIC_COLUMNS = ["run_id", "epoch", "benchmark", "metric", "scorer", "value"]


def metric_row(run_id: str, epoch: int, benchmark: str, metric: str, scorer: str,
               value: float) -> dict:
    return {"run_id": run_id, "epoch": int(epoch), "benchmark": benchmark, "metric": metric,
            "scorer": scorer, "value": round(float(value), 6)}


def write_csv_atomic(path: str | Path, rows: list[dict], columns: list[str] | None = None,
                     first: list[str] | None = None) -> None:
    """:func:`rasa.io.write_csv_atomic`, with the metrics columns in their order for metric rows."""
    if columns is None and rows and set(rows[0]) == set(METRIC_COLUMNS):
        columns = METRIC_COLUMNS
    _write_csv_atomic(path, rows, columns, first)
