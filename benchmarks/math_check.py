"""Benchmark: check 5,000 MATH answer pairs with both scorers and print the wall time.

    PYTHONPATH=. python benchmarks/math_check.py [--pairs 5000] [--workers 2] [--timeout 5] [--labelled]

The pairs mix the answer forms of the MATH test set (integers, fractions in \\frac/\\dfrac/decimal
form, radicals, pi, polynomials, units and degrees, thousands separators, text choices, tuples,
intervals, sets, matrices, missing answers) with matching and non-matching predictions, plus a
few pathological inputs. Each scorer is timed alone on the same pairs, in answers per minute,
with Math-Verify alone as the baseline (target for ``corrected``: >= 5,000 answers/min on 2
cores). ``--labelled`` adds accuracy and false accepts on the labelled test set.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rasa.evaluation.math import check_pairs, make_pool  # noqa: E402


def _forms(rng: random.Random) -> tuple[str, str, str]:
    """(kind, prediction, gold) for one random pair."""
    a, b = rng.randint(1, 99), rng.randint(2, 99)
    kind = rng.choice([
        "int", "int", "int", "int", "frac", "frac", "decimal", "sqrt", "pi", "poly", "units",
        "thousands", "choice", "tuple", "interval", "set", "matrix", "invalid", "wrong",
    ])
    same = rng.random() < 0.6
    c = a if same else a + rng.randint(1, 5)
    if kind == "int":
        return kind, str(c), str(a)
    if kind == "frac":
        forms = [f"\\dfrac{{{c}}}{{{b}}}", f"{c}/{b}", f"\\frac{{{c}}}{{{b}}}"]
        return kind, rng.choice(forms), f"\\frac{{{a}}}{{{b}}}"
    if kind == "decimal":
        return kind, str(c / 4), f"\\frac{{{a}}}{{4}}"
    if kind == "sqrt":
        return kind, f"{c}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b}}}"
    if kind == "pi":
        return kind, f"\\frac{{{c}\\pi}}{{{b}}}", f"\\frac{{{a}}}{{{b}}}\\pi"
    if kind == "poly":
        return kind, f"x^2+{2 * c}x+{c * c}", f"(x+{a})^2"
    if kind == "units":
        return kind, f"{c}^\\circ", f"{a}\\text{{ degrees}}"
    if kind == "thousands":
        return kind, f"{c * 1000 + 7:,}", str(a * 1000 + 7)
    if kind == "choice":
        letters = "ABCDE"
        return kind, f"\\text{{({letters[c % 5]})}}", f"\\text{{({letters[a % 5]})}}"
    if kind == "tuple":
        return kind, f"\\left({c},\\frac{{{b}}}{{2}}\\right)", f"({a},\\frac{{{b}}}{{2}})"
    if kind == "interval":
        return kind, f"(-\\infty,{c}]\\cup[{b + 100},\\infty)", f"(-\\infty, {a}] \\cup [{b + 100}, \\infty)"
    if kind == "set":
        return kind, f"{b}, {c}", f"{a},{b}"
    if kind == "matrix":
        return (kind, f"\\begin{{pmatrix}} {c} & {b} \\\\ 0 & 1 \\end{{pmatrix}}",
                f"\\begin{{pmatrix}}{a}&{b}\\\\0&1\\end{{pmatrix}}")
    if kind == "invalid":
        return kind, "[INVALID]", str(a)
    return kind, f"{c}x", f"{a}y"


def make_pairs(n: int, seed: int = 0, pathological: int = 2) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    pairs = [_forms(rng) for _ in range(n - pathological)]
    nasty = [("pathological", "10^{10^{10^{10}}}", "5"), ("pathological", "{" * 10_000 + "1" + "}" * 10_000, "1")]
    return pairs + nasty[:pathological]


def _labelled_table(pool, timeout: float) -> None:
    """Accuracy and false accepts on tests/evaluation/data/math_labelled.tsv, per scorer."""
    import csv

    path = Path(__file__).resolve().parents[1] / "tests/evaluation/data/math_labelled.tsv"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    verdicts = check_pairs([(r["prediction"], r["gold"]) for r in rows], SCORERS, timeout=timeout,
                           pool=pool)
    subsets = {"tuning": [not r["class"].startswith("heldout:") for r in rows],
               "held out": [r["class"].startswith("heldout:") for r in rows]}
    subsets["all"] = [True] * len(rows)
    print(f"labelled pairs ({path.name}): right / pairs, false accepts (FA)")
    for scorer in SCORERS:
        cells = []
        for name, member in subsets.items():
            pick = [(r, v) for r, v, m in zip(rows, verdicts[scorer], member) if m]
            right = sum(bool(v["match"]) == (r["correct"] == "1") for r, v in pick)
            fa = sum(bool(v["match"]) and r["correct"] == "0" for r, v in pick)
            cells.append(f"{name} {right}/{len(pick)} FA {fa}")
        print(f"  {scorer:11s} " + "; ".join(cells))


SCORERS = ("paper", "corrected", "math-verify")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--pathological", type=int, default=2)
    p.add_argument("--labelled", action="store_true", help="also print the labelled-set table")
    args = p.parse_args(argv)

    pairs = make_pairs(args.pairs, pathological=args.pathological)
    kinds = [k for k, _, _ in pairs]
    print(f"{len(pairs)} pairs on {args.workers} workers, a fresh pool (cold caches) per scorer; "
          "Math-Verify alone is the baseline")
    seconds = {}
    for scorer in SCORERS:
        pool = make_pool(args.workers, args.timeout)
        try:
            pool.map("rasa.evaluation.math_check:check", [(scorer, "1", "2", args.timeout)])  # start-up
            t1 = time.perf_counter()
            verdicts = check_pairs([(p_, g) for _, p_, g in pairs], (scorer,), timeout=args.timeout,
                                   pool=pool)[scorer]
            seconds[scorer] = time.perf_counter() - t1
        finally:
            pool.close()
        matched = Counter(k for k, v in zip(kinds, verdicts) if v["match"])
        notes = Counter(v["note"].split(":")[0] for v in verdicts)
        print(f"  {scorer:11s} {seconds[scorer]:6.1f} s = {60 * len(pairs) / seconds[scorer]:7.0f} "
              f"answers/min (matches {sum(matched.values())}/{len(pairs)}; {pool.restarts} worker "
              f"restarts; notes {dict(notes)})", flush=True)
    base = seconds["math-verify"]
    print("  speed vs Math-Verify alone: " + ", ".join(
        f"{s} x{base / seconds[s]:.2f}" for s in SCORERS if s != "math-verify"))
    if args.labelled:
        pool = make_pool(args.workers, args.timeout)
        try:
            _labelled_table(pool, args.timeout)
        finally:
            pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
