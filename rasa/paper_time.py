"""The paper's training times (the Time columns of Tables 1–2), looked up by run.

Tables 1–2 give the wall-clock hours of each 8-epoch run on the full training set on one node of
8 × A100-40G, for Llama-3.1-8B and Mistral-0.3-7B and every adapter method and rank. They give no
time for full fine-tuning, for rank 4 (Figure 6), or for Llama-3.1-70B and Mixtral-8x7B: those
lookups answer ``None`` and the caller decides (see :mod:`rasa.resources`).
"""

from __future__ import annotations

from rasa.method_registry import LABELS as METHOD_NAMES
from rasa.report.reference import paper_value

#: Which table holds a task's times (our task names and the paper's task column both work).
TASK_TABLES = {"code": "table1", "code_humanevalplus": "table1",
               "math": "table2", "math_MATH": "table2"}
METRIC = "train_time_h"


def train_hours(paper_model: str, task: str, method: str, r: int) -> float | None:
    """Hours the paper reports for one run (8 epochs, full data, 1 × 8 A100-40G), or ``None``.

    ``paper_model`` is the paper's model name (``Llama-3.1-8B``, ``Mistral-0.3-7B``: a config
    model's ``paper_name``); ``task`` is ``code`` or ``math`` (or the paper's ``code_humanevalplus``,
    ``math_MATH``); ``method`` our name (``lora``) or the paper's (``LoRA``); ``r`` the rank as the
    paper prints it (VeRA: 1024).
    """
    if task not in TASK_TABLES:
        raise ValueError(f"unknown task {task!r}: one of {sorted(TASK_TABLES)}")
    name = METHOD_NAMES.get(method.lower(), method)
    value = paper_value(TASK_TABLES[task], paper_model, name, str(r), METRIC)
    return value if isinstance(value, float) else None
