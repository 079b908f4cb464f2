"""MATH evaluation: Figure 8 prompts, greedy generation, two answer scorers, accuracy breakdowns.

Public API for other tools::

    from rasa.evaluation.math import answers_match
    answers_match("\\\\dfrac12", "0.5", "corrected")  # -> True

CLI (one trained artefact, one epoch)::

    python -m rasa.evaluation.math --model DIR [--trained DIR] --problems FILE --run-id ID \\
        --epoch E --max-new-tokens 2048 --batch-size 8 --timeout 5 --workers 2 \\
        --out metrics.csv --details details.csv

Metrics rows (benchmark ``math``, value in percent), for each scorer ``paper`` and ``corrected``:
``accuracy``, ``accuracy/<subject>`` (the problem's ``type``) and ``accuracy/level<n>``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import sys
from collections import defaultdict
from pathlib import Path

from rasa.evaluation.math_normalize import extract_prediction, last_boxed
from rasa.evaluation.workers import Outcome, TimeoutPool

SCORERS = ("paper", "corrected")
BENCHMARK = "math"
_CHECK = "rasa.evaluation.math_check:check"
_GRACE_S = 2.0

_pool: TimeoutPool | None = None
_pool_key: tuple | None = None


def make_pool(workers: int, timeout: float, memory_mb: int | None = 2048) -> TimeoutPool:
    """Workers for answer checking: hard deadline = per-answer timeout + a grace period."""
    return TimeoutPool(workers=workers, timeout=timeout + _GRACE_S, memory_mb=memory_mb,
                       init="rasa.evaluation.math_check:warm_up")


def _shared_pool(timeout: float) -> TimeoutPool:
    global _pool, _pool_key
    if _pool is None or _pool_key != (timeout,):
        if _pool is not None:
            _pool.close()
        _pool, _pool_key = make_pool(1, timeout), (timeout,)
    return _pool


@atexit.register
def _close_shared_pool() -> None:
    if _pool is not None:
        _pool.close()


def _verdict(outcome: Outcome) -> dict:
    if outcome.status == "ok":
        return outcome.value
    return {"match": False, "note": outcome.status if not outcome.error else
            f"{outcome.status}:{outcome.error}"[:200], "pred_norm": "", "gold_norm": ""}


def answers_match(prediction: str, gold: str, scorer: str = "corrected",
                  timeout: float = 5.0) -> bool:
    """Whether ``prediction`` and ``gold`` (answer strings, not full solutions) agree.

    ``scorer`` is ``"paper"`` (the authors' sympy-only check, flaw included) or ``"corrected"``.
    The check runs in a worker process and returns within ``timeout`` plus a small grace period,
    whatever the input; a timeout or crash is a mismatch.
    """
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {SCORERS}, got {scorer!r}")
    if scorer == "corrected" and prediction.strip() == gold.strip():
        return True  # the exact-string shortcut needs no worker
    outcome = _shared_pool(timeout).map(_CHECK, [(scorer, prediction, gold, timeout)])[0]
    return bool(_verdict(outcome)["match"])


def check_pairs(pairs: list[tuple[str, str]], scorers=SCORERS, workers: int = 2,
                timeout: float = 5.0, pool: TimeoutPool | None = None,
                desc: str | None = None) -> dict[str, list[dict]]:
    """Score many (prediction, gold) pairs: ``{scorer: [verdict dict per pair]}``."""
    own = pool is None
    pool = pool or make_pool(workers, timeout)
    try:
        tasks = [(scorer, pred, gold, timeout) for scorer in scorers for pred, gold in pairs]
        outcomes = pool.map(_CHECK, tasks, desc=desc)
    finally:
        if own:
            pool.close()
    verdicts = [_verdict(o) for o in outcomes]
    n = len(pairs)
    return {scorer: verdicts[i * n:(i + 1) * n] for i, scorer in enumerate(scorers)}


# ------------------------------------------------------------------------------------ problems


def load_problems(path: str | Path) -> list[dict]:
    """MATH problems from JSONL: hendrycks schema (problem, solution, type, level) or the
    WizardMath/MetaMath one the authors used (instruction, output, type, level)."""
    problems = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            row = json.loads(line)
            solution = row.get("solution", row.get("output"))
            gold = last_boxed(solution)
            if gold is None:
                raise ValueError(f"{path}:{i + 1}: no \\boxed{{}} answer in the solution")
            problems.append({
                "idx": row.get("idx", row.get("unique_id", i)),
                "problem": row.get("problem", row.get("instruction")),
                "gold": gold,
                "type": row.get("type", "unknown"),
                "level": _level(row.get("level", "")),
            })
    return problems


def _level(value) -> str:
    text = str(value).replace("Level", "").strip()
    return text if text else "unknown"


def accuracy_rows(problems: list[dict], correct: list[bool]) -> list[tuple[str, float]]:
    """``[(metric, percent)]``: overall, per subject, per level."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for problem, ok in zip(problems, correct):
        groups["accuracy"].append(ok)
        groups[f"accuracy/{problem['type']}"].append(ok)
        groups[f"accuracy/level{problem['level']}"].append(ok)
    order = ["accuracy"] + sorted(k for k in groups if k != "accuracy")
    return [(k, 100.0 * sum(groups[k]) / len(groups[k])) for k in order]


def score(problems: list[dict], generations: list[str], workers: int, timeout: float,
          desc: str | None = "checking answers") -> tuple[list[dict], dict[str, list[bool]]]:
    """Per-problem detail records and per-scorer correctness lists."""
    predictions = [extract_prediction(g) for g in generations]
    verdicts = check_pairs(list(zip(predictions, (p["gold"] for p in problems))),
                           workers=workers, timeout=timeout, desc=desc)
    details, correct = [], {s: [] for s in SCORERS}
    for i, problem in enumerate(problems):
        row = {"idx": problem["idx"], "type": problem["type"], "level": problem["level"],
               "gold": problem["gold"], "prediction": predictions[i]}
        for scorer in SCORERS:
            v = verdicts[scorer][i]
            correct[scorer].append(bool(v["match"]))
            row[f"correct_{scorer}"] = int(bool(v["match"]))
            row[f"note_{scorer}"] = v["note"]
        row["pred_norm"] = verdicts["paper"][i]["pred_norm"]
        row["gold_norm"] = verdicts["paper"][i]["gold_norm"]
        row["generation"] = generations[i]
        details.append(row)
    return details, correct


# ------------------------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    from rasa.evaluation import generation
    from rasa.evaluation.io import metric_row, write_csv_atomic
    from rasa.prompts import math_prompt

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    generation.add_model_args(p)
    p.add_argument("--problems", required=True, help="MATH test JSONL")
    p.add_argument("--run-id", required=True)
    p.add_argument("--epoch", required=True, type=int)
    p.add_argument("--max-new-tokens", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--timeout", type=float, default=5.0, help="per-answer check timeout (s)")
    p.add_argument("--workers", type=int, default=2, help="answer-checking processes")
    p.add_argument("--limit", type=int, default=None, help="first N problems only (smoke tests)")
    p.add_argument("--out", required=True, help="metrics CSV")
    p.add_argument("--details", required=True, help="per-problem CSV")
    args = p.parse_args(argv)

    problems = load_problems(args.problems)[: args.limit]
    engine = generation.engine_from_args(args)
    outputs = engine.generate(
        [math_prompt(pr["problem"]) for pr in problems],
        generation.DecodingConfig(max_new_tokens=args.max_new_tokens, do_sample=False,
                                  batch_size=args.batch_size, seed=args.seed),
        desc="MATH generation",
    )
    engine.release()
    details, correct = score(problems, [o[0] for o in outputs], args.workers, args.timeout)
    for row in details:
        row.update(run_id=args.run_id, epoch=args.epoch, backend=engine.name)
    rows = [metric_row(args.run_id, args.epoch, BENCHMARK, metric, scorer, value)
            for scorer in SCORERS for metric, value in accuracy_rows(problems, correct[scorer])]
    write_csv_atomic(args.details, details, first=["run_id", "epoch", "idx"])
    write_csv_atomic(args.out, rows)
    overall = {r["scorer"]: r["value"] for r in rows if r["metric"] == "accuracy"}
    print(f"MATH accuracy over {len(problems)} problems ({engine.name}): "
          + ", ".join(f"{s} {overall[s]:.1f}" for s in SCORERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
