"""Atomic result writes: a reader (or Snakemake) never sees a half-written result file."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_open(path: str | Path):
    """A text handle on a temporary file in ``path``'s folder, moved onto ``path`` with
    ``os.replace`` only if the block succeeds (the temporary file is removed otherwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_csv_atomic(path: str | Path, rows: list[dict], columns: list[str] | None = None,
                     first: list[str] | None = None) -> None:
    """Write ``rows`` to ``path`` atomically (:func:`atomic_open`).

    ``columns`` defaults to ``first`` followed by the remaining keys in order of appearance.
    """
    if columns is None:
        keys: list[str] = list(first or [])
        for row in rows:
            keys += [k for k in row if k not in keys]
        columns = keys
    with atomic_open(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl_atomic(path: str | Path, records: list[dict]) -> None:
    """Write ``records`` to ``path`` as JSON lines, atomically (:func:`atomic_open`)."""
    with atomic_open(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
