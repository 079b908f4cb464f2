"""Atomic CSV writes: a reader (or Snakemake) never sees a half-written result file."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path


def write_csv_atomic(path: str | Path, rows: list[dict], columns: list[str] | None = None,
                     first: list[str] | None = None) -> None:
    """Write ``rows`` to ``path`` via a temporary file in the same folder and ``os.replace``,
    so a reader never sees a half-written result.

    ``columns`` defaults to ``first`` followed by the remaining keys in order of appearance.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if columns is None:
        keys: list[str] = list(first or [])
        for row in rows:
            keys += [k for k in row if k not in keys]
        columns = keys
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise", lineterminator="\n")
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
