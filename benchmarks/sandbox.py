"""Benchmark: honest HumanEval+ scoring through the sandbox, new path vs the old one, side by side.

    PYTHONPATH=. python benchmarks/sandbox.py [--repeats 4] [--workers 2] [--baseline COMMIT]

Scores the canonical solutions of the fixture problems (``rasa/fixtures/humanevalplus.jsonl``,
base and plus tests) ``--repeats`` times with each path, alternating, and prints both wall
times and the ratio new/old (target: at most 1.5). The old path is the sandbox as it was at
``--baseline`` (evalplus's ``untrusted_check`` inside the sandboxed harness, verdicts decided
there), read from git into a temporary folder so it stays reachable only here.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rasa.evaluation import sandbox  # noqa: E402
from rasa.evaluation.humaneval import compute_expected, load_problems  # noqa: E402

BASELINE = "1cab48b"  # the last commit with verdicts decided inside the sandbox


def _old_sandbox(commit: str, folder: Path):
    for name in ("sandbox.py", "_sandbox_child.py"):
        text = subprocess.run(["git", "show", f"{commit}:rasa/evaluation/{name}"], cwd=ROOT,
                              check=True, capture_output=True, text=True).stdout
        (folder / name).write_text(text)
    spec = importlib.util.spec_from_file_location("old_sandbox", folder / "sandbox.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _score(module, jobs, workers: int) -> tuple[float, int]:
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda job: module.check_program(*job), jobs))
    return time.monotonic() - start, sum(module.passed(r, plus=True) for r in results)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--baseline", default=BASELINE)
    args = p.parse_args()
    problems = load_problems(ROOT / "rasa" / "fixtures" / "humanevalplus.jsonl")
    expected = compute_expected(problems)
    jobs = []
    for pr in problems:
        exp = expected[pr["task_id"]]
        tests = [("base", pr["base_input"], exp["base"], exp["base_time"]),
                 ("plus", pr["plus_input"], exp["plus"], exp["plus_time"])]
        jobs.append((pr["prompt"] + pr["canonical_solution"], pr["entry_point"], tests, pr.get("atol", 0)))
    print(f"isolation mode: {sandbox.isolation_mode()}; {len(jobs)} samples x {args.repeats} repeats, "
          f"{args.workers} workers")
    with tempfile.TemporaryDirectory() as tmp:
        old = _old_sandbox(args.baseline, Path(tmp))
        times = {"new": 0.0, "old": 0.0}
        for _ in range(args.repeats):
            for name, module in (("old", old), ("new", sandbox)):
                seconds, n_pass = _score(module, jobs, args.workers)
                times[name] += seconds
                assert n_pass == len(jobs), f"{name}: {n_pass}/{len(jobs)} canonical solutions passed"
    per = {k: v / (args.repeats * len(jobs)) for k, v in times.items()}
    print(f"old: {times['old']:.1f} s ({per['old'] * 1000:.0f} ms/sample)   "
          f"new: {times['new']:.1f} s ({per['new'] * 1000:.0f} ms/sample)   "
          f"ratio new/old: {times['new'] / times['old']:.2f}")


if __name__ == "__main__":
    main()
