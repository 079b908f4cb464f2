"""One source of truth for training-run identity: a run spec and the id derived from it.

Every stage (Snakemake rules, training, evaluation, report) names a run by ``run_id(spec)`` and
recovers the spec with ``parse_run_id``; nothing else builds or splits these strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rasa import method_registry


@dataclass(frozen=True, order=True)
class RunSpec:
    """One training run: which model, on which task, with which adapter, rank, data and epochs."""

    model: str
    task: str
    method: str
    r: int = 0  # 0 for full fine-tuning
    k: int = 0  # shared ranks per layer; only methods with ``uses_k`` (RaSA) use it
    fraction: float = 1.0
    epochs: int = 8


def run_id(spec: RunSpec) -> str:
    """``tiny-llama__math__rasa-r8-k1__f100__e8``: readable, sortable, one directory name."""
    method = method_registry.get(spec.method)
    if not method.has_rank:
        adapter = spec.method
    elif method.uses_k:
        adapter = f"rasa-r{spec.r}-k{spec.k}"
    else:
        adapter = f"{spec.method}-r{spec.r}"
    percent = round(spec.fraction * 100)
    return f"{spec.model}__{spec.task}__{adapter}__f{percent}__e{spec.epochs}"


_RUN_ID = re.compile(
    r"^(?P<model>[^_]+(?:_[^_]+)*?)__(?P<task>[a-z]+)__(?P<method>[a-z][a-z0-9]*)"
    r"(?:-r(?P<r>\d+))?(?:-k(?P<k>\d+))?__f(?P<pct>\d+)__e(?P<epochs>\d+)$"
)


def parse_run_id(text: str) -> RunSpec:
    """Inverse of :func:`run_id`; raises ``ValueError`` naming the malformed id."""
    m = _RUN_ID.match(text)
    if not m:
        raise ValueError(f"not a run id: {text!r} (expected model__task__method-rR[-kK]__fPCT__eN)")
    return RunSpec(
        model=m["model"],
        task=m["task"],
        method=m["method"],
        r=int(m["r"] or 0),
        k=int(m["k"] or 0),
        fraction=int(m["pct"]) / 100,
        epochs=int(m["epochs"]),
    )
