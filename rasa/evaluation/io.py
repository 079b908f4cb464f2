"""Result files: the metrics schema shared by every benchmark, and atomic CSV writes."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

METRIC_COLUMNS = ["run_id", "epoch", "benchmark", "metric", "scorer", "value"]


def metric_row(run_id: str, epoch: int, benchmark: str, metric: str, scorer: str,
               value: float) -> dict:
    return {"run_id": run_id, "epoch": int(epoch), "benchmark": benchmark, "metric": metric,
            "scorer": scorer, "value": round(float(value), 6)}


def write_csv_atomic(path: str | Path, rows: list[dict], columns: list[str] | None = None,
                     first: list[str] | None = None) -> None:
    """Write ``rows`` to ``path`` via a temporary file in the same folder and ``os.replace``,
    so a reader never sees a half-written result.

    ``columns`` defaults to :data:`METRIC_COLUMNS` when the rows have exactly those keys, else to
    ``first`` followed by the remaining keys in order of appearance.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if columns is None:
        keys: list[str] = list(first or [])
        for row in rows:
            keys += [k for k in row if k not in keys]
        columns = METRIC_COLUMNS if set(keys) == set(METRIC_COLUMNS) else keys
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise")
            writer.writeheader()
            writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
