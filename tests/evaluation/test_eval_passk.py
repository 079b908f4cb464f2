"""pass@k: the unbiased estimator on hand-computed cases, and agreement with evalplus's own."""

from math import comb

import pytest

from rasa.evaluation.passk import mean_pass_at_k, pass_at_k, reported_ks


@pytest.mark.parametrize("n,c,k,expected", [
    (1, 1, 1, 1.0),
    (1, 0, 1, 0.0),
    (5, 2, 1, 2 / 5),                      # pass@1 = c/n
    (50, 10, 1, 0.2),
    (4, 1, 2, 1 - 3 / 6),                  # 1 - C(3,2)/C(4,2) = 1/2
    (5, 2, 2, 1 - 3 / 10),                 # 1 - C(3,2)/C(5,2) = 7/10
    (10, 3, 5, 1 - 21 / 252),              # 1 - C(7,5)/C(10,5)
    (50, 0, 10, 0.0),
    (50, 41, 10, 1.0),                     # n - c < k: every draw of 10 contains a pass
    (50, 5, 10, 1 - comb(45, 10) / comb(50, 10)),
])
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_matches_evalplus_estimator():
    from evalplus.eval import estimate_pass_at_k

    counts = [(50, c) for c in (0, 1, 7, 25, 49, 50)] + [(10, 3), (20, 19)]
    for k in (1, 10):
        ours = [pass_at_k(n, c, k) for n, c in counts]
        theirs = estimate_pass_at_k([n for n, _ in counts], [c for _, c in counts], k)
        assert ours == pytest.approx(list(theirs), abs=1e-12)


def test_mean_and_reported_ks():
    assert mean_pass_at_k([(2, 2), (2, 0)], 1) == pytest.approx(0.5)
    assert reported_ks(50) == [1, 10]
    assert reported_ks(5) == [1]
    with pytest.raises(ValueError):
        pass_at_k(5, 2, 6)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
