"""The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained
on Code", Eq. 1): for n samples of which c pass, pass@k = 1 - C(n-c, k) / C(n, k)."""

from __future__ import annotations

from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n passes."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def mean_pass_at_k(counts: list[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given ``[(n, c), ...]``."""
    if not counts:
        raise ValueError("no problems")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def reported_ks(n: int, ks: tuple[int, ...] = (1, 10)) -> list[int]:
    """The ks reported for n samples per problem (k <= n), as the bigcode harness does."""
    return [k for k in ks if k <= n]
