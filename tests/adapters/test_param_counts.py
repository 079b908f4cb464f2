"""`python -m rasa.param_counts` reproduces the paper's parameter columns (meta device, no weights)."""

import pytest

from rasa import param_counts as pc

FAST_ROWS = [("vera", 1024), ("lora", 8), ("rasa", 8), ("rasa", 16), ("mora", 8), ("mora", 16), ("adalora", 16),
             ("prilora", 8)]


def check(rows):
    for row in rows:
        key = (row["method"], row["r"])
        if row["match"]:
            continue
        assert pc.NOTES.get(key), f"unexplained mismatch for {key}: {row}"


def test_fast_subset_llama():
    rows = pc.table(models=("Llama-3.1-8B",), rows=FAST_ROWS)
    got = {(r["method"], r["r"]): r for r in rows}
    assert got[("lora", 8)]["trainable"] == 20_971_520
    assert got[("rasa", 8)]["trainable"] == 20_971_520 + 7 * 32 * (8 - 1 + 32)  # LoRA + diagonals
    assert got[("vera", 1024)]["trainable"] == 32 * (7 * 1024 + 43008)  # lambda_d (r) + lambda_b (out) per module
    assert got[("mora", 16)]["trainable"] == 41_823_104 and not got[("mora", 16)]["match"]
    assert got[("adalora", 16)]["extra"] == 2 * got[("adalora", 16)]["trainable"]
    assert got[("prilora", 8)]["trainable"] == 21_299_200
    for key in [("vera", 1024), ("lora", 8), ("rasa", 8), ("rasa", 16), ("mora", 8), ("adalora", 16)]:
        assert got[key]["match"], got[key]
    check(rows)


@pytest.mark.slow
def test_full_table_both_models(capsys):
    assert pc.main([]) == 0
    rows = pc.table()
    check(rows)
    trainable_ok = [r for r in rows if r["method"] in ("lora", "rasa", "vera", "olora", "prilora")]
    assert all(round(r["trainable"] / 1e6, 1) == r["paper_trainable"] for r in trainable_ok if r["paper_trainable"])
