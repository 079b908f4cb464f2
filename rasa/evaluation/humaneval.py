"""HumanEval+ evaluation: Figure 9 prompts, sampling, the authors' post-processing, sandboxed checks.

Two commands, so that generation (GPU) and scoring (CPU) run as separate jobs (the paper's
settings shown)::

    python -m rasa.evaluation.humaneval generate --model DIR [--trained DIR] --problems P.jsonl \\
        --n-samples 50 --temperature 0.2 --top-p 0.95 --max-new-tokens 2048 --max-length 2048 \\
        --batch-size 10 --seed 0 --backend hf --samples samples.jsonl
    python -m rasa.evaluation.humaneval score --samples samples.jsonl --problems P.jsonl \\
        --run-id ID --epoch E --timeout 20 --workers 8 [--scorers plus,base,bigcode] \\
        --out metrics.csv --details per_problem.csv

Problems are evalplus HumanEval+ records (task_id, prompt, entry_point, canonical_solution,
base_input, plus_input, atol). Expected outputs and reference times come from running each
canonical solution (evalplus's ``trusted_exec``), as evalplus does; ``--expected-cache`` keeps
them (and so the time limits) fixed across runs.

Prompt, as the authors' harness builds it (HumanEvalPack ``humanevalsynthesize-python``,
``--prompt alpaca-chat``): the alpaca preamble, ``### Instruction:``, the problem's instruction
stripped, ``### Response:``, then the problem's prompt (imports, signature, docstring) as the start
of the response; the whole text stripped. The instruction is the record's ``instruction`` field
(HumanEvalPack's) when present, otherwise rebuilt in HumanEvalPack's form: "Write a Python function
`SIGNATURE` to solve the following problem:\\nDOCSTRING" (the docstring cleaned as
``inspect.cleandoc`` does).

Post-processing, byte for byte the harness's (``remove_last_block``): the completion,
right-stripped, is cut at the first stop word (``STOP_WORDS``), then before its first non-empty
line that starts with neither a space nor a tab, counting from line 0 (the rest of the prompt's
last line), and appended to the problem's prompt, right-stripped.

``--prompt chat`` (not the paper's; for an untrained chat model, the tables' base-model row with
``benchmarks.humanevalplus.base_prompt: chat``): the request "Complete the following Python
function:" with the problem's prompt in a code block, as the user's turn of the tokenizer's chat
template (:func:`rasa.prompts.chat_prompt`); no stop words (the reply ends at EOS). The program
(:func:`chat_solution`) is the reply's first code block cleaned by evalplus's sanitizer (the
imports and the definitions the entry point reaches), after the prompt's text before the entry
point (imports, helper functions); a block without ``def <entry point>`` is taken as the body, on
a new line after the prompt, and post-processed as above.

Samples file (JSONL, one record per sample): ``task_id``, ``sample`` (index), ``completion`` (the
model's text), ``solution`` (the program to test), ``backend``, ``prompt`` (alpaca or chat).
``score`` also reads files made elsewhere: a record's ``solution`` is tested as it is (evalplus's
convention); a record with only a ``completion`` is post-processed as above first.

Metric rows (benchmark ``humanevalplus``, value in percent), one per selected scorer and k:
``plus`` (base and plus tests through evalplus: the paper's HumanEval+), ``base`` (the original
HumanEval inputs only), and, when selected, ``bigcode`` (the authors' harness: one program of
sample + test code under one time limit, :mod:`rasa.evaluation.humaneval_bigcode`); metrics
``pass@1`` and ``pass@10`` (only k <= n), unbiased estimator.
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
from rasa.evaluation.sandbox import Limits, check_program, passed, require_sandbox, run_script
from rasa.io import atomic_open

STOP_WORDS = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\nassert",
              "<|endoftext|>", "<|eot_id|>")
BENCHMARK = "humanevalplus"
SCORERS = ("plus", "base", "bigcode")
DEFAULT_SCORERS = ("plus", "base")


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


def build_chat_prompt(problem: dict, tokenizer) -> str:
    from rasa.prompts import CODE_CHAT_REQUEST, chat_prompt

    return chat_prompt(tokenizer, CODE_CHAT_REQUEST.format(code=problem["prompt"].strip()))


_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.S)


def chat_solution(problem: dict, reply: str) -> str:
    """The program of a chat reply (see the module docstring)."""
    from evalplus.sanitize import sanitize

    block = _FENCE.search(reply)
    code = block.group(1) if block else reply
    definition = re.compile(rf"^def\s+{re.escape(problem['entry_point'])}\s*\(", re.M)
    entry = definition.search(problem["prompt"])
    if entry is None or not definition.search(code):
        return postprocess(problem, "\n" + code.lstrip("\n"))
    return problem["prompt"][: entry.start()] + sanitize(code, problem["entry_point"])


def postprocess(problem: dict, completion: str) -> str:
    """The program to test, as the authors' harness makes it (see the module docstring)."""
    from rasa.evaluation.generation import truncate_at_stop

    code = truncate_at_stop(completion.rstrip(), STOP_WORDS)
    lines = code.split("\n")
    for i, line in enumerate(lines):
        if line.strip() and line[0] not in (" ", "\t"):
            code = "\n".join(lines[:i])
            break
    return problem["prompt"].rstrip() + code


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
        with atomic_open(cache, "wb") as fh:
            pickle.dump({"key": key, "expected": expected}, fh)
    return expected


# ------------------------------------------------------------------------------------- scoring


def score_programs(problems: list[dict], programs: list[list[str]], expected: dict[str, dict],
                   limits: Limits = Limits(), workers: int = 2, desc: str | None = "testing",
                   scorers: tuple[str, ...] = DEFAULT_SCORERS,
                   allow_unsandboxed: bool = False) -> list[list[dict]]:
    """Sandboxed verdicts for ``programs[i][j]`` (problem i, sample j): evalplus's
    (``base``/``plus``, when either scorer is selected) and the authors' harness's (``bigcode``).
    Raises :class:`~rasa.evaluation.sandbox.SandboxUnavailable` before running anything when no
    isolation can be had, unless ``allow_unsandboxed``."""
    from rasa.evaluation import humaneval_bigcode

    mode = require_sandbox(allow_unsandboxed)
    evalplus_checks = bool({"plus", "base"} & set(scorers))
    jobs = []
    for i, problem in enumerate(problems):
        exp = expected[problem["task_id"]]
        tests = [("base", problem["base_input"], exp["base"], exp["base_time"]),
                 ("plus", problem["plus_input"], exp["plus"], exp["plus_time"])]
        check = humaneval_bigcode.check_code(problem, exp) if "bigcode" in scorers else None
        for j, program in enumerate(programs[i]):
            jobs.append((i, j, program, problem, tests, check))
    results: list[list[dict | None]] = [[None] * len(p) for p in programs]

    def run(job):
        i, j, program, problem, tests, check = job
        res = {"base": None, "plus": None, "error": ""}
        if evalplus_checks:
            res = check_program(program, problem["entry_point"], tests, problem.get("atol", 0), limits,
                                mode=mode, allow_unsandboxed=allow_unsandboxed)
        if check is not None:
            res["bigcode"] = run_script(humaneval_bigcode.program(program, problem, check), limits,
                                        mode=mode, allow_unsandboxed=allow_unsandboxed)
        return i, j, res

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, j, res in tqdm(pool.map(run, jobs), total=len(jobs), desc=desc,
                              disable=desc is None, mininterval=2.0):
            results[i][j] = res
    return results  # type: ignore[return-value]


def passes(result: dict, scorer: str) -> bool:
    if scorer == "bigcode":
        return result.get("bigcode") == "pass"
    return passed(result, plus=scorer == "plus")


def summarize(problems: list[dict], results: list[list[dict]],
              scorers: tuple[str, ...] = DEFAULT_SCORERS) -> tuple[list[dict], dict]:
    """Per-problem rows and ``{(scorer, "pass@k"): percent}`` for each selected scorer."""
    rows, counts = [], {scorer: [] for scorer in scorers}
    for problem, res in zip(problems, results):
        n = len(res)
        row = {"task_id": problem["task_id"], "n": n}
        for scorer in scorers:
            c = sum(passes(r, scorer) for r in res)
            counts[scorer].append((n, c))
            row[f"correct_{scorer}"] = c
            for k in reported_ks(n):
                row[f"pass@{k}_{scorer}"] = round(pass_at_k(n, c, k), 6)
        row["killed"] = sum(r["base"] == "killed" for r in res)
        row["errors"] = "; ".join(sorted({r["error"] for r in res if r["error"]}))[:300]
        rows.append(row)
    n_min = min((len(r) for r in results), default=0)
    metrics = {(scorer, f"pass@{k}"): 100.0 * mean_pass_at_k(cs, k)
               for scorer, cs in counts.items() for k in reported_ks(n_min)}
    return rows, metrics


# ---------------------------------------------------------------------------------- samples file


def read_samples(path: str | Path, problems: list[dict]) -> tuple[list[list[str]], list[dict]]:
    """Programs per problem (in the problems' order) and the records, from a samples JSONL.

    Raises ``SystemExit`` naming the record and field when the file does not fit the problems.
    """
    by_task: dict[str, list[tuple[int, str]]] = {p["task_id"]: [] for p in problems}
    index = {p["task_id"]: p for p in problems}
    records = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            task = record.get("task_id")
            where = f"{path}, line {line_no}"
            if task is None:
                raise SystemExit(f"{where}: no 'task_id'")
            if task not in index:
                continue  # another problem (e.g. beyond --limit)
            if isinstance(record.get("solution"), str):
                program = record["solution"]
            elif isinstance(record.get("completion"), str):
                program = postprocess(index[task], record["completion"])
            else:
                raise SystemExit(f"{where}: needs a 'solution' (the program) or a 'completion' string")
            by_task[task].append((record.get("sample", len(by_task[task])), program))
            records.append(record)
    missing = [t for t, s in by_task.items() if not s]
    if missing:
        raise SystemExit(f"{path}: no samples for {len(missing)} problem(s), e.g. {missing[0]}; "
                         f"generate them, or score the first problems only with --limit")
    return [[program for _, program in sorted(by_task[p["task_id"]], key=lambda s: s[0])]
            for p in problems], records


# ------------------------------------------------------------------------------------------ CLI


def _generate(args: argparse.Namespace) -> int:
    from rasa.evaluation import generation
    from rasa.io import write_jsonl_atomic

    problems = load_problems(args.problems)[: args.limit]
    engine = generation.engine_from_args(args)
    chat = args.prompt == "chat"
    prompts = [build_chat_prompt(pr, engine.tokenizer) if chat else build_prompt(pr) for pr in problems]
    cfg = generation.DecodingConfig(
        max_new_tokens=args.max_new_tokens, do_sample=args.temperature > 0,
        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, n=args.n_samples,
        batch_size=args.batch_size, stop=() if chat else STOP_WORDS, seed=args.seed,
        max_length=args.max_length)
    t0 = time.monotonic()
    completions = engine.generate(prompts, cfg, desc="HumanEval+ generation")
    engine.release()
    program = chat_solution if chat else postprocess
    records = [{"task_id": pr["task_id"], "sample": j, "completion": text,
                "solution": program(pr, text), "backend": engine.name, "prompt": args.prompt}
               for pr, texts in zip(problems, completions) for j, text in enumerate(texts)]
    write_jsonl_atomic(args.samples, records)
    print(f"HumanEval+ generation: {len(problems)} problems x {args.n_samples} samples, "
          f"{time.monotonic() - t0:.0f} s, backend {engine.name} -> {args.samples}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from rasa.evaluation.io import metric_row, write_csv_atomic

    scorers = tuple(dict.fromkeys(s.strip() for s in args.scorers.split(",") if s.strip()))
    unknown = [s for s in scorers if s not in SCORERS]
    if unknown or not scorers:
        raise SystemExit(f"--scorers: unknown {unknown or 'empty list'}; choose from {','.join(SCORERS)}")
    mode = require_sandbox(args.allow_unsandboxed)  # before any compute: refuse, naming what is missing
    problems = load_problems(args.problems)[: args.limit]
    programs, records = read_samples(args.samples, problems)
    expected = compute_expected(problems, args.expected_cache)
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb,
                    min_time_limit=args.min_time_limit, gt_time_limit_factor=args.gt_time_limit_factor)
    t0 = time.monotonic()
    results = score_programs(problems, programs, expected, limits, args.workers, scorers=scorers,
                             allow_unsandboxed=args.allow_unsandboxed)
    rows, metrics = summarize(problems, results, scorers)
    backend = ",".join(sorted({str(r.get("backend", "unknown")) for r in records}))
    for row in rows:
        row.update(run_id=args.run_id, epoch=args.epoch, backend=backend, sandbox=mode,
                   timeout_s=args.timeout, workers=args.workers, memory_mb=args.memory_mb,
                   min_time_limit=args.min_time_limit, gt_time_limit_factor=args.gt_time_limit_factor)
    write_csv_atomic(args.details, rows, first=["run_id", "epoch", "task_id"])
    out = [metric_row(args.run_id, args.epoch, BENCHMARK, metric, scorer, value)
           for (scorer, metric), value in metrics.items()]
    write_csv_atomic(args.out, out)
    print(f"HumanEval+ scoring ({len(problems)} problems, {sum(map(len, programs))} samples, "
          f"{time.monotonic() - t0:.0f} s, sandbox {mode}): "
          + ", ".join(f"{scorer} {m} {v:.1f}" for (scorer, m), v in metrics.items()))
    return 0


def _parser() -> argparse.ArgumentParser:
    from rasa.evaluation import generation

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="sample completions (GPU) into a samples JSONL")
    generation.add_model_args(g)
    g.add_argument("--problems", required=True, help="HumanEval+ JSONL (evalplus format)")
    g.add_argument("--n-samples", type=int, default=50)
    g.add_argument("--temperature", type=float, default=0.2)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--max-new-tokens", type=int, default=2048)
    g.add_argument("--max-length", type=int, default=None,
                   help="cap on prompt + completion tokens (the paper: 2048)")
    g.add_argument("--batch-size", type=int, default=10)
    g.add_argument("--limit", type=int, default=None, help="first N problems only (smoke tests)")
    g.add_argument("--prompt", default="alpaca", choices=["alpaca", "chat"],
                   help="alpaca: the paper's (Figure 9); chat: the tokenizer's chat template, the "
                        "program from the reply's code block (an untrained chat model)")
    g.add_argument("--samples", required=True, help="samples JSONL to write")
    g.set_defaults(run=_generate)

    s = sub.add_parser("score", help="test the samples of a samples JSONL (CPU), "
                                     "as evalplus.evaluate --samples")
    s.add_argument("--samples", required=True, help="samples JSONL (task_id + solution or completion)")
    s.add_argument("--problems", required=True, help="HumanEval+ JSONL (evalplus format)")
    s.add_argument("--run-id", required=True)
    s.add_argument("--epoch", required=True, type=int)
    s.add_argument("--scorers", default=",".join(DEFAULT_SCORERS),
                   help=f"comma-separated, from {','.join(SCORERS)}")
    s.add_argument("--timeout", type=float, default=20.0, help="wall-clock seconds per sample")
    s.add_argument("--workers", type=int, default=2, help="samples tested in parallel")
    s.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per sample")
    s.add_argument("--min-time-limit", type=float, default=1.0, help="evalplus per-input minimum (s)")
    s.add_argument("--gt-time-limit-factor", type=float, default=4.0,
                   help="evalplus: per-input limit = factor x canonical time")
    s.add_argument("--expected-cache", default=None, help="pickle of canonical outputs/times")
    s.add_argument("--limit", type=int, default=None, help="first N problems only (smoke tests)")
    s.add_argument("--allow-unsandboxed", action="store_true",
                   help="run model-written programs WITHOUT isolation where none can be had "
                        "(never the default; the run's details record sandbox=none)")
    s.add_argument("--out", required=True, help="metrics CSV")
    s.add_argument("--details", required=True, help="per-problem CSV")
    s.set_defaults(run=_score)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
