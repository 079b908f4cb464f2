"""Atomic writes: a reader (or Snakemake) never sees a half-written file or folder.

The one implementation of write-to-a-temporary-then-rename in the package: files through
:func:`atomic_open` (and the CSV/JSONL/text writers built on it), folders through
:func:`atomic_folder`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
from pathlib import Path


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w"):
    """A handle (text, or binary with ``mode="wb"``) on a temporary file in ``path``'s folder,
    moved onto ``path`` with ``os.replace`` only if the block succeeds (the temporary file is
    removed otherwise). The file gets the permissions ``open`` gives (the umask's)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode {mode!r} must be 'w' or 'wb'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of this process's own (not ``mkstemp``, whose files are private to the user)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = {"newline": "", "encoding": "utf-8"} if mode == "w" else {}
    try:
        with open(tmp, mode, **text) as fh:
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


def write_jsonl_atomic(path: str | Path, records, sort_keys: bool = False) -> None:
    """Write ``records`` (any iterable of dicts) to ``path`` as JSON lines, atomically
    (:func:`atomic_open`)."""
    with atomic_open(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, sort_keys=sort_keys) + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_open`)."""
    with atomic_open(path) as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_folder(target: str | Path):
    """A fresh temporary folder beside ``target``, renamed onto ``target`` (replacing what was
    there) only if the block succeeds; removed otherwise."""
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
