"""rasa.recon: LoRA's exact minimum reconstruction error and RaSA's block-coordinate descent."""

import math

import pytest
import torch

from rasa.recon import lora_error, lora_error_from_spectra, rasa_error, reconstruct, spectra

from recon_dense_reference import rasa_error_dense

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared machine
    yield
    torch.set_num_threads(n)


def random_updates(L, b, a, seed, rank=None):
    """Fine-tuning-like updates: power-law spectrum, a component shared across layers, noise."""
    g = torch.Generator().manual_seed(seed)
    rank = rank or min(b, a)
    spec = torch.arange(1, rank + 1, dtype=F64) ** -0.8
    us, vs = torch.randn(b, 4, generator=g, dtype=F64), torch.randn(4, a, generator=g, dtype=F64)
    out = []
    for _ in range(L):
        u = torch.randn(b, rank, generator=g, dtype=F64) / math.sqrt(b)
        v = torch.randn(rank, a, generator=g, dtype=F64) / math.sqrt(a)
        w = torch.randn(4, generator=g, dtype=F64) * 0.1
        out.append((u * spec) @ v + (us * w) @ vs / math.sqrt(a * b)
                   + 0.01 * torch.randn(b, a, generator=g, dtype=F64) / math.sqrt(a))
    return out


def planted(L, b, a, r, k, seed):
    """M_i = private rank r−k + B_S D_i A_S with a pool of rank L·k: RaSA's minimum error is 0."""
    g = torch.Generator().manual_seed(seed)
    K = L * k
    B0 = torch.linalg.qr(torch.randn(b, K, generator=g, dtype=F64))[0]
    A0 = torch.linalg.qr(torch.randn(a, K, generator=g, dtype=F64))[0].T
    out = []
    for _ in range(L):
        p = 3.0 * torch.randn(b, r - k, generator=g, dtype=F64) @ torch.randn(r - k, a, generator=g, dtype=F64)
        out.append(p / (a * b) ** 0.25 + (B0 * (1 + torch.rand(K, generator=g, dtype=F64))) @ A0)
    return out


def total(mats):
    return sum(float((m ** 2).sum()) for m in mats)


def test_lora_error_is_eckart_young():
    mats = random_updates(3, 12, 20, seed=0)
    for r in (0, 1, 5, 12, 30):
        want = sum(float((torch.linalg.svdvals(m)[r:] ** 2).sum()) for m in mats)
        assert lora_error(mats, r) == pytest.approx(want, rel=1e-10, abs=1e-12)
    spec = spectra(mats, 8)
    assert lora_error_from_spectra(spec, 5) == pytest.approx(lora_error(mats, 5), rel=1e-12)


@pytest.mark.parametrize("init", ["theorem", "paper"])
def test_k0_equals_lora(init):
    mats = random_updates(3, 20, 30, seed=1)
    le = lora_error(mats, 5)
    e, hist = rasa_error(mats, 5, 0, 5, init=init)
    assert len(hist) == 6
    for h in hist:
        assert h == pytest.approx(le, rel=1e-9)
    assert e == hist[-1]


@pytest.mark.parametrize("seed,shape,r,k", [(0, (4, 24, 40), 6, 1), (1, (5, 36, 20), 6, 2),
                                            (2, (3, 30, 30), 4, 4), (3, (6, 16, 48), 8, 1)])
def test_theorem_start_never_above_lora_and_monotone(seed, shape, r, k):
    mats = random_updates(*shape, seed=seed)
    le = lora_error(mats, r)
    e, hist = rasa_error(mats, r, k, 15, init="theorem")
    assert hist[0] == pytest.approx(le, rel=1e-9)          # Theorem 3.1 construction = LoRA's optimum
    assert all(h <= le * (1 + 1e-10) for h in hist)
    assert all(hist[j + 1] <= hist[j] for j in range(len(hist) - 1))
    assert e < le                                            # and strictly better after descent


def test_paper_start_is_above_lora_then_descends():
    mats = random_updates(4, 24, 40, seed=5)
    le = lora_error(mats, 8)
    e, hist = rasa_error(mats, 8, 1, 40, init="paper")
    assert hist[0] == pytest.approx(lora_error(mats, 7), rel=1e-9)  # private part only: rank r−k
    assert hist[0] > le
    assert all(hist[j + 1] <= hist[j] for j in range(len(hist) - 1))
    assert e < le


def test_reported_error_is_the_true_error():
    mats = random_updates(4, 20, 28, seed=7)
    e, _, st = rasa_error(mats, 6, 2, 10, return_state=True)
    true = sum(float(((m - reconstruct(st, i)) ** 2).sum()) for i, m in enumerate(mats))
    assert e == pytest.approx(true, rel=1e-9)


@pytest.mark.parametrize("init", ["theorem", "paper"])
def test_fast_solver_matches_dense_reference(init):
    mats = random_updates(4, 24, 36, seed=11)
    e_fast, h_fast = rasa_error(mats, 6, 2, 6, init=init)
    e_dense, h_dense = rasa_error_dense(mats, 6, 2, 6, init=init)
    assert len(h_fast) == len(h_dense) == 7
    for x, y in zip(h_fast, h_dense):
        assert x == pytest.approx(y, rel=1e-6)
    assert all(h_dense[j + 1] <= h_dense[j] for j in range(6))


def test_planted_shared_pool_is_recovered():
    L, b, a, r, k = 4, 24, 32, 4, 1
    mats = planted(L, b, a, r, k, seed=0)
    tot, le = total(mats), lora_error(mats, r)
    assert le / tot > 1e-3                                   # LoRA cannot represent it
    e, hist = rasa_error(mats, r, k, 150, init="theorem")
    assert e / tot < 1e-4                                    # RaSA's error goes to ~0
    assert e < 1e-2 * le
    assert all(hist[j + 1] <= hist[j] for j in range(len(hist) - 1))


def test_degenerate_ranks():
    mats = random_updates(3, 8, 12, seed=3)                  # min dim 8
    assert lora_error(mats, 8) == 0.0 and lora_error(mats, 20) == 0.0
    for r, k in [(8, 1), (10, 4), (20, 8), (9, 9)]:
        e, hist = rasa_error(mats, r, k, 3)
        assert e < 1e-10 * total(mats)
    with pytest.raises(ValueError):
        rasa_error(mats, 2, 3, 1)


def test_float32_and_spectra_reuse():
    mats = random_updates(4, 20, 30, seed=4)
    e64, _ = rasa_error(mats, 6, 1, 8)
    e32, h32 = rasa_error(mats, 6, 1, 8, dtype=torch.float32)
    assert e32 == pytest.approx(e64, rel=1e-4)
    assert all(h32[j + 1] <= h32[j] for j in range(8))
    spec = spectra(mats, 20)
    e_s, _ = rasa_error(mats, 6, 1, 8, spectra=spec)
    assert e_s == pytest.approx(e64, rel=1e-9)


def test_deterministic():
    mats = random_updates(3, 16, 24, seed=9)
    assert rasa_error(mats, 5, 1, 6, init="paper", seed=3) == rasa_error(mats, 5, 1, 6, init="paper", seed=3)
