"""Benchmark: check 5,000 MATH answer pairs with both scorers and print the wall time.

    PYTHONPATH=. python benchmarks/math_check.py [--pairs 5000] [--workers 2] [--timeout 5]

The pairs mix the answer forms of the MATH test set (integers, fractions in \\frac/\\dfrac/decimal
form, radicals, pi, polynomials, units and degrees, thousands separators, text choices, tuples,
intervals, sets, matrices, missing answers) with matching and non-matching predictions, plus a
few pathological inputs. Target: under a minute on 2 cores for both scorers together.
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
        return kind, rng.choice([f"\\dfrac{{{c}}}{{{b}}}", f"{c}/{b}", f"\\frac{{{c}}}{{{b}}}"]), f"\\frac{{{a}}}{{{b}}}"
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--pathological", type=int, default=2)
    args = p.parse_args(argv)

    pairs = make_pairs(args.pairs, pathological=args.pathological)
    pool = make_pool(args.workers, args.timeout)
    try:
        t0 = time.perf_counter()
        pool.map("rasa.evaluation.math_check:check", [("paper", "1", "1", args.timeout)])  # start-up
        t1 = time.perf_counter()
        verdicts = check_pairs([(p_, g) for _, p_, g in pairs], workers=args.workers,
                               timeout=args.timeout, pool=pool, desc="checking")
        t2 = time.perf_counter()
    finally:
        pool.close()
    kinds = [k for k, _, _ in pairs]
    print(f"{len(pairs)} pairs x 2 scorers on {args.workers} workers: {t2 - t1:.1f} s "
          f"(+ {t1 - t0:.1f} s worker start-up), {pool.restarts} worker restarts")
    for scorer in ("paper", "corrected"):
        matched = Counter(k for k, v in zip(kinds, verdicts[scorer]) if v["match"])
        notes = Counter(v["note"].split(":")[0] for v in verdicts[scorer])
        print(f"  {scorer:9s} matches {sum(matched.values())}/{len(pairs)}; "
              f"by kind {dict(sorted(matched.items()))}; notes {dict(notes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
