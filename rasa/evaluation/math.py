"""MATH evaluation: Figure 8 prompts, greedy generation, two answer scorers, accuracy breakdowns.

Public API for other tools::

    from rasa.evaluation.math import answers_match
    answers_match("\\\\dfrac12", "0.5", "corrected")  # -> True

CLI, in two steps so that generation (GPU) and scoring (CPU) run as separate jobs::

    python -m rasa.evaluation.math generate --model DIR [--trained DIR] --problems FILE \\
        --max-new-tokens 2048 --batch-size 8 [--extract last_response|completion] [--limit N] \\
        --samples samples.jsonl
    python -m rasa.evaluation.math score --samples samples.jsonl --problems FILE --run-id ID \\
        --epoch E --timeout 5 --workers 2 [--limit N] --out metrics.csv --details details.csv

The samples file has one record per problem, in problem order: ``idx``, ``text`` (the raw
decoded text), ``response`` (what the extraction took), ``extract`` and ``backend``.

Extraction (``--extract``): ``last_response`` (default, the authors') decodes the whole
sequence (prompt + completion, special tokens skipped) and takes the text after its last
"### Response:\\n", so a model that writes a new "### Response:" inside its answer is scored
on what follows it; ``completion`` takes the generated text up to the first EOS.

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

from rasa.evaluation.math_normalize import AuthorsCrash, extract_prediction, last_boxed, paper_gold
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
    """Score many (prediction, gold) pairs: ``{scorer: [verdict dict per pair]}``.

    ``scorers`` may also name ``math-verify`` (Math-Verify alone, the benchmarks' baseline).
    """
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
            try:
                gold_paper, crash = paper_gold(solution), ""
            except AuthorsCrash as exc:
                gold_paper, crash = None, str(exc)
            problems.append({
                "idx": row.get("idx", row.get("unique_id", i)),
                "problem": row.get("problem", row.get("instruction")),
                "gold": gold,
                "gold_paper": gold_paper,
                "gold_paper_crash": crash,
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


def score(problems: list[dict], responses: list[str], workers: int, timeout: float,
          desc: str | None = "checking answers") -> tuple[list[dict], dict[str, list[bool]]]:
    """Per-problem detail records and per-scorer correctness lists.

    ``paper`` reads prediction and gold as the authors do (see :mod:`.math_normalize`); where
    their gold extraction crashes, its verdict is ``False`` with note ``authors-crash``.
    ``corrected`` uses the stripped prediction and the brace-matched last box.
    """
    paper_pred = [extract_prediction(r, paper=True) for r in responses]
    predictions = [extract_prediction(r) for r in responses]
    scorable = [i for i, p in enumerate(problems) if p["gold_paper"] is not None]
    pool = make_pool(workers, timeout)
    try:
        corrected = check_pairs(list(zip(predictions, (p["gold"] for p in problems))),
                                ("corrected",), timeout=timeout, pool=pool, desc=desc)
        paper_ok = check_pairs([(paper_pred[i], problems[i]["gold_paper"]) for i in scorable],
                               ("paper",), timeout=timeout, pool=pool, desc=desc)
    finally:
        pool.close()
    paper = dict(zip(scorable, paper_ok["paper"]))
    paper = [paper.get(i) or {"match": False, "note": f"authors-crash:{p['gold_paper_crash']}",
                              "pred_norm": "", "gold_norm": ""} for i, p in enumerate(problems)]
    verdicts = {"paper": paper, "corrected": corrected["corrected"]}
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
        row["response"] = responses[i]
        details.append(row)
    return details, correct


# ------------------------------------------------------------------------------------------ CLI


EXTRACTIONS = ("last_response", "completion")


def take_response(text: str, extract: str) -> str:
    """The response scored: after the last response header of ``text`` (``last_response``;
    the whole text if the header is missing, where the authors' code stops with an assertion), or
    ``text`` itself (``completion``)."""
    from rasa.prompts import RESPONSE_HEADER

    if extract == "last_response" and RESPONSE_HEADER in text:
        return text[text.rindex(RESPONSE_HEADER) + len(RESPONSE_HEADER):]
    return text


def generate(args: argparse.Namespace) -> int:
    from rasa.evaluation import generation
    from rasa.io import write_jsonl_atomic
    from rasa.prompts import math_prompt

    problems = load_problems(args.problems)[: args.limit]
    engine = generation.engine_from_args(args)
    outputs = engine.generate(
        [math_prompt(pr["problem"]) for pr in problems],
        generation.DecodingConfig(max_new_tokens=args.max_new_tokens, do_sample=False,
                                  batch_size=args.batch_size, seed=args.seed,
                                  full_text=args.extract == "last_response"),
        desc="MATH generation",
    )
    engine.release()
    write_jsonl_atomic(args.samples, [
        {"idx": pr["idx"], "text": out[0], "response": take_response(out[0], args.extract),
         "extract": args.extract, "backend": engine.name}
        for pr, out in zip(problems, outputs)])
    print(f"MATH: {len(problems)} generations ({engine.name}, extract={args.extract}) -> {args.samples}")
    return 0


def read_samples(path: str | Path, problems: list[dict]) -> list[dict]:
    """The samples file, checked against the problems (same count, same ``idx`` order)."""
    with open(path, encoding="utf-8") as fh:
        samples = [json.loads(line) for line in fh if line.strip()]
    if len(samples) != len(problems):
        raise ValueError(f"--samples {path}: {len(samples)} records for {len(problems)} problems; "
                         "generate and score with the same --problems and --limit")
    for i, (sample, problem) in enumerate(zip(samples, problems)):
        if sample.get("idx") != problem["idx"] or "response" not in sample:
            raise ValueError(f"--samples {path}: record {i + 1} has idx {sample.get('idx')!r} "
                             f"(problem idx {problem['idx']!r}) or no 'response'; regenerate it")
    return samples


def score_cli(args: argparse.Namespace) -> int:
    from rasa.evaluation.io import metric_row, write_csv_atomic

    problems = load_problems(args.problems)[: args.limit]
    samples = read_samples(args.samples, problems)
    details, correct = score(problems, [s["response"] for s in samples], args.workers, args.timeout)
    for row, sample in zip(details, samples):
        row.update(run_id=args.run_id, epoch=args.epoch, backend=sample.get("backend", ""),
                   extract=sample.get("extract", ""))
    rows = [metric_row(args.run_id, args.epoch, BENCHMARK, metric, scorer, value)
            for scorer in SCORERS for metric, value in accuracy_rows(problems, correct[scorer])]
    write_csv_atomic(args.details, details, first=["run_id", "epoch", "idx"])
    write_csv_atomic(args.out, rows)
    overall = {r["scorer"]: r["value"] for r in rows if r["metric"] == "accuracy"}
    print(f"MATH accuracy over {len(problems)} problems: "
          + ", ".join(f"{s} {overall[s]:.1f}" for s in SCORERS))
    return 0


def main(argv: list[str] | None = None) -> int:
    from rasa.evaluation import generation

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="greedy generations for the problems (GPU)")
    generation.add_model_args(g)
    g.add_argument("--max-new-tokens", type=int, default=2048)
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--extract", choices=EXTRACTIONS, default="last_response",
                   help="last_response: text after the last response header of the whole decoded "
                        "sequence (the authors'); completion: generated text up to the first EOS")
    g.add_argument("--samples", required=True, help="output JSONL, one record per problem")
    s = sub.add_parser("score", help="score a samples file with both scorers (CPU)")
    s.add_argument("--samples", required=True, help="the JSONL written by `generate`")
    s.add_argument("--run-id", required=True)
    s.add_argument("--epoch", required=True, type=int)
    s.add_argument("--timeout", type=float, default=5.0, help="per-answer check timeout (s)")
    s.add_argument("--workers", type=int, default=2, help="answer-checking processes")
    s.add_argument("--out", required=True, help="metrics CSV")
    s.add_argument("--details", required=True, help="per-problem CSV")
    for sp in (g, s):
        sp.add_argument("--problems", required=True, help="MATH test JSONL")
        sp.add_argument("--limit", type=int, default=None, help="first N problems only (smoke tests)")
    args = p.parse_args(argv)
    return generate(args) if args.command == "generate" else score_cli(args)


if __name__ == "__main__":
    sys.exit(main())
