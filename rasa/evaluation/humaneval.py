"""HumanEval+ evaluation: Figure 9 prompts, sampling, post-processing, sandboxed evalplus checks.

CLI (one trained artefact, one epoch; the paper's settings shown)::

    python -m rasa.evaluation.humaneval --model DIR [--trained DIR] --problems HumanEvalPlus.jsonl \\
        --run-id ID --epoch E --n-samples 50 --temperature 0.2 --top-p 0.95 --max-new-tokens 2048 \\
        --max-length 2048 --batch-size 10 --seed 0 --timeout 20 --workers 8 --backend hf \\
        --out metrics.csv --details per_problem.csv [--samples samples.jsonl]

Problems are evalplus HumanEval+ records (task_id, prompt, entry_point, canonical_solution,
base_input, plus_input, atol). Expected outputs and reference times come from running each
canonical solution (evalplus's ``trusted_exec``), as evalplus does; ``--expected-cache`` keeps
them (and so the time limits) fixed across runs.

Prompt (HumanEvalPack ``humanevalsynthesize-python`` with the alpaca-chat template): the
instruction "Write a Python function `SIGNATURE` to solve the following problem:\\nDOCSTRING"
(or the problem's own ``instruction`` field, if present), then the problem's prompt (imports,
signature, docstring) as the start of the response; the whole prompt is stripped, as in the
authors' harness. Post-processing: cut at the first stop word (``STOP_WORDS``), then at the first
non-indented line, and prepend the problem's prompt.

Metrics rows (benchmark ``humanevalplus``, value in percent): scorer ``plus`` (base and plus
tests: the paper's HumanEval+) and scorer ``base`` (the original HumanEval tests only), metrics
``pass@1`` and ``pass@10`` (only k <= n), unbiased estimator; all scored by evalplus.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import pickle
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from rasa.evaluation.passk import mean_pass_at_k, pass_at_k, reported_ks
from rasa.evaluation.sandbox import Limits, check_program, isolation_mode, passed

STOP_WORDS = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\nassert",
              "<|endoftext|>", "<|eot_id|>")
BENCHMARK = "humanevalplus"


# ------------------------------------------------------------------------------------ problems


def load_problems(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def signature_and_docstring(problem: dict) -> tuple[str, str]:
    """``("name(args) -> ret", "cleaned docstring")`` of the entry point, from the prompt."""
    prompt, entry = problem["prompt"], problem["entry_point"]
    match = re.search(rf"def\s+({re.escape(entry)}\s*\(.*?\)\s*(?:->\s*[^:]+?)?)\s*:\s*\n",
                      prompt, re.S)
    signature = re.sub(r"\s+", " ", match.group(1)).strip() if match else f"{entry}(...)"
    docstring = ""
    try:
        tree = ast.parse(prompt + "    pass\n")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry:
                docstring = ast.get_docstring(node) or ""
    except SyntaxError:
        pass
    return signature, docstring


def instruction(problem: dict) -> str:
    if problem.get("instruction"):
        return problem["instruction"]
    signature, docstring = signature_and_docstring(problem)
    return f"Write a Python function `{signature}` to solve the following problem:\n{docstring}"


def build_prompt(problem: dict) -> str:
    from rasa.prompts import code_prompt

    return code_prompt(instruction(problem), problem["prompt"]).strip()


def postprocess(problem: dict, completion: str) -> str:
    """The program to test: the problem's prompt plus the completion, cut at the first stop
    word and at the first non-indented line (the completion's first line continues the
    prompt's last line)."""
    from rasa.evaluation.generation import truncate_at_stop

    completion = truncate_at_stop(completion, STOP_WORDS)
    lines = completion.split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() and not lines[i][0].isspace():
            lines = lines[:i]
            break
    return problem["prompt"].rstrip() + "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------- expected outputs


def compute_expected(problems: list[dict], cache: str | Path | None = None) -> dict[str, dict]:
    """Per task: canonical outputs and run times on base and plus inputs (evalplus's way)."""
    from evalplus.gen.util import trusted_exec

    key = hashlib.sha256(json.dumps(problems, sort_keys=True).encode()).hexdigest()
    if cache and Path(cache).is_file():
        with open(cache, "rb") as fh:
            stored = pickle.load(fh)
        if stored.get("key") == key:
            return stored["expected"]
    expected = {}
    for problem in tqdm(problems, desc="canonical outputs", mininterval=2.0):
        code = problem["prompt"] + problem["canonical_solution"]
        entry = {}
        for split in ("base", "plus"):
            entry[split], entry[f"{split}_time"] = trusted_exec(
                code, problem[f"{split}_input"], problem["entry_point"], record_time=True)
        expected[problem["task_id"]] = entry
    if cache:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(cache).with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"key": key, "expected": expected}, fh)
        tmp.replace(cache)
    return expected


# ------------------------------------------------------------------------------------- scoring


def score_programs(problems: list[dict], programs: list[list[str]], expected: dict[str, dict],
                   limits: Limits = Limits(), workers: int = 2,
                   desc: str | None = "testing") -> list[list[dict]]:
    """Sandboxed evalplus verdicts for ``programs[i][j]`` (problem i, sample j)."""
    jobs = []
    for i, problem in enumerate(problems):
        exp = expected[problem["task_id"]]
        tests = [("base", problem["base_input"], exp["base"], exp["base_time"]),
                 ("plus", problem["plus_input"], exp["plus"], exp["plus_time"])]
        for j, program in enumerate(programs[i]):
            jobs.append((i, j, program, problem["entry_point"], tests, problem.get("atol", 0)))
    results: list[list[dict | None]] = [[None] * len(p) for p in programs]

    def run(job):
        i, j, program, entry, tests, atol = job
        return i, j, check_program(program, entry, tests, atol, limits)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, j, res in tqdm(pool.map(run, jobs), total=len(jobs), desc=desc,
                              disable=desc is None, mininterval=2.0):
            results[i][j] = res
    return results  # type: ignore[return-value]


def summarize(problems: list[dict], results: list[list[dict]]) -> tuple[list[dict], dict]:
    """Per-problem rows and ``{(scorer, "pass@k"): percent}``, scorer ``base`` or ``plus``."""
    rows, counts = [], {"base": [], "plus": []}
    for problem, res in zip(problems, results):
        n = len(res)
        c_base = sum(passed(r, plus=False) for r in res)
        c_plus = sum(passed(r, plus=True) for r in res)
        counts["base"].append((n, c_base))
        counts["plus"].append((n, c_plus))
        row = {"task_id": problem["task_id"], "n": n, "correct_base": c_base, "correct_plus": c_plus}
        for k in reported_ks(n):
            row[f"pass@{k}_base"] = round(pass_at_k(n, c_base, k), 6)
            row[f"pass@{k}_plus"] = round(pass_at_k(n, c_plus, k), 6)
        row["killed"] = sum(r["base"] == "killed" for r in res)
        row["errors"] = "; ".join(sorted({r["error"] for r in res if r["error"]}))[:300]
        rows.append(row)
    n_min = min((len(r) for r in results), default=0)
    metrics = {(scorer, f"pass@{k}"): 100.0 * mean_pass_at_k(cs, k)
               for scorer, cs in counts.items() for k in reported_ks(n_min)}
    return rows, metrics


# ------------------------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    from rasa.evaluation import generation
    from rasa.evaluation.io import metric_row, write_csv_atomic

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    generation.add_model_args(p)
    p.add_argument("--problems", required=True, help="HumanEval+ JSONL (evalplus format)")
    p.add_argument("--run-id", required=True)
    p.add_argument("--epoch", required=True, type=int)
    p.add_argument("--n-samples", type=int, default=50)
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=2048)
    p.add_argument("--max-length", type=int, default=None,
                   help="cap on prompt + completion tokens (the paper: 2048)")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--timeout", type=float, default=20.0, help="wall-clock seconds per sample")
    p.add_argument("--workers", type=int, default=2, help="samples tested in parallel")
    p.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per sample")
    p.add_argument("--min-time-limit", type=float, default=1.0, help="evalplus per-input minimum (s)")
    p.add_argument("--gt-time-limit-factor", type=float, default=4.0,
                   help="evalplus: per-input limit = factor x canonical time")
    p.add_argument("--expected-cache", default=None, help="pickle of canonical outputs/times")
    p.add_argument("--limit", type=int, default=None, help="first N problems only (smoke tests)")
    p.add_argument("--out", required=True, help="metrics CSV")
    p.add_argument("--details", required=True, help="per-problem CSV")
    p.add_argument("--samples", default=None, help="optional per-sample JSONL (programs, verdicts)")
    args = p.parse_args(argv)

    problems = load_problems(args.problems)[: args.limit]
    expected = compute_expected(problems, args.expected_cache)
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb,
                    min_time_limit=args.min_time_limit, gt_time_limit_factor=args.gt_time_limit_factor)
    engine = generation.engine_from_args(args)
    cfg = generation.DecodingConfig(
        max_new_tokens=args.max_new_tokens, do_sample=args.temperature > 0,
        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, n=args.n_samples,
        batch_size=args.batch_size, stop=STOP_WORDS, seed=args.seed, max_length=args.max_length)
    t0 = time.monotonic()
    completions = engine.generate([build_prompt(pr) for pr in problems], cfg, desc="HumanEval+ generation")
    engine.release()
    programs = [[postprocess(pr, c) for c in comps] for pr, comps in zip(problems, completions)]
    t1 = time.monotonic()
    results = score_programs(problems, programs, expected, limits, args.workers)
    rows, metrics = summarize(problems, results)
    mode = isolation_mode()
    for row in rows:
        row.update(run_id=args.run_id, epoch=args.epoch, backend=engine.name, sandbox=mode,
                   timeout_s=args.timeout, workers=args.workers, memory_mb=args.memory_mb,
                   min_time_limit=args.min_time_limit, gt_time_limit_factor=args.gt_time_limit_factor)
    write_csv_atomic(args.details, rows, first=["run_id", "epoch", "task_id"])
    if args.samples:
        records = [{"task_id": pr["task_id"], "sample": j, "completion": completions[i][j],
                    "program": programs[i][j], **results[i][j]}
                   for i, pr in enumerate(problems) for j in range(len(programs[i]))]
        _write_jsonl_atomic(args.samples, records)
    out = [metric_row(args.run_id, args.epoch, BENCHMARK, metric, scorer, value)
           for (scorer, metric), value in metrics.items()]
    write_csv_atomic(args.out, out)
    print(f"HumanEval+ ({len(problems)} problems x {args.n_samples} samples; generation "
          f"{t1 - t0:.0f} s, tests {time.monotonic() - t1:.0f} s, sandbox {mode}): "
          + ", ".join(f"{scorer} {m} {v:.1f}" for (scorer, m), v in metrics.items()))
    return 0


def _write_jsonl_atomic(path: str | Path, records: list[dict]) -> None:
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
