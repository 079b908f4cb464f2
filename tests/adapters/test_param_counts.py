"""`python -m rasa.param_counts` reproduces the paper's parameter columns (meta device, no weights)."""

import copy

import pytest

from rasa import param_counts as pc

FAST_ROWS = [("fft", None), ("vera", 1024), ("lora", 8), ("rasa", 8), ("rasa", 16), ("mora", 8), ("mora", 16),
             ("adalora", 16), ("prilora", 8)]


@pytest.fixture(scope="module")
def llama_rows():
    return pc.table(models=("Llama-3.1-8B",), rows=FAST_ROWS)


def test_fast_subset_llama(llama_rows):
    got = {(r["method"], r["r"]): r for r in llama_rows}
    assert got[("lora", 8)]["trainable"] == 20_971_520
    assert got[("rasa", 8)]["trainable"] == 20_971_520 + 7 * 32 * (8 - 1 + 32)  # LoRA + diagonals
    assert got[("vera", 1024)]["trainable"] == 32 * (7 * 1024 + 43008)  # lambda_d (r) + lambda_b (out) per module
    assert got[("mora", 16)]["trainable"] == 41_823_104 and not got[("mora", 16)]["match"]
    assert got[("adalora", 16)]["extra"] == 2 * got[("adalora", 16)]["trainable"]
    assert got[("prilora", 8)]["trainable"] == 21_299_200
    assert got[("fft", None)]["paper_trainable"] == "7-8B" and got[("fft", None)]["match"]
    for key in [("vera", 1024), ("lora", 8), ("rasa", 8), ("rasa", 16), ("mora", 8), ("adalora", 16)]:
        assert got[key]["match"], got[key]
    assert pc.check(llama_rows) == []


def test_paper_counts_come_from_the_csv_for_both_models():
    for model in pc.MODELS:
        paper = pc.paper_counts(model)
        assert paper[("rasa", 16)] == {"trainable": 42.0, "extra": None}
        assert paper[("prilora", 8)] == {"trainable": 21.3, "extra": 10.7}
        assert paper[("fft", None)]["trainable"] == "7-8B"
        assert pc.paper_order(paper)[:3] == [("fft", None), ("vera", 1024), ("lora", 8)]


def test_check_fails_on_a_wrong_count_even_where_a_difference_is_known(llama_rows):
    got = {(r["method"], r["r"]): r for r in llama_rows}
    wrong_lora = copy.deepcopy(got[("lora", 8)])
    wrong_lora["trainable"] += 200_000  # 21.2M, not the paper's 21.0M
    wrong_mora = copy.deepcopy(got[("mora", 16)])  # known: 41.8M, not the paper's 41.9M
    wrong_mora["trainable"] -= 200_000
    wrong_extra = copy.deepcopy(got[("prilora", 8)])  # known: extra 10.1M
    wrong_extra["extra"] = 0
    problems = pc.check([wrong_lora, wrong_mora, wrong_extra])
    assert len(problems) == 3
    assert "lora r=8: trainable" in problems[0] and "mora r=16: trainable" in problems[1]
    assert "prilora r=8: extra" in problems[2]


@pytest.mark.slow
def test_full_table_both_models(capsys):
    assert pc.main([]) == 0
    rows = pc.table()
    assert len(rows) == 2 * 20 and pc.check(rows) == []
    trainable_ok = [r for r in rows if r["method"] in ("lora", "rasa", "vera", "olora", "prilora")]
    assert all(round(r["trainable"] / 1e6, 1) == r["paper_trainable"] for r in trainable_ok)
