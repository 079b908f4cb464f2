"""rasa.mechanism: teacher construction and a few training steps of LoRA and RaSA students."""

import json

import pandas as pd
import pytest
import torch

from rasa.mechanism import COLUMNS, build_teacher, main
from rasa.recon import lora_error, rasa_error


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("mech") / "tiny"
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=64, max_position_embeddings=32)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def test_teacher_updates_have_the_planted_structure(tiny_model):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    teacher, deltas = build_teacher(base, ["q_proj", "up_proj"], shared_rank=4, private_rank=3,
                                    private_frac=0.2, scale=0.5, seed=0)
    assert set(deltas) == {"self_attn.q_proj", "mlp.up_proj"}
    for name, ds in deltas.items():
        assert len(ds) == 4
        for d in ds:
            assert torch.linalg.matrix_rank(d).item() == 7           # S + p > r = 4
        # the base model is untouched, the teacher moved by ΔW
        w0 = dict(base.named_parameters())[f"model.layers.0.{name}.weight"]
        w1 = dict(teacher.named_parameters())[f"model.layers.0.{name}.weight"]
        assert torch.allclose((w1 - w0).double(), ds[0], atol=1e-5)
        assert (ds[0].norm() / w0.double().norm()).item() == pytest.approx(0.5, rel=1e-5)
        # RaSA (r=4, k=1) reconstructs the updates better than LoRA at r=4
        e_rasa, _ = rasa_error(ds, 4, 1, 30)
        assert e_rasa < lora_error(ds, 4)


def test_cli_writes_loss_curves(tiny_model, tmp_path):
    out, summ = tmp_path / "loss.csv", tmp_path / "summary.json"
    rc = main(["--model", str(tiny_model), "--out", str(out), "--steps", "20", "--seed", "1", "--r", "4",
               "--k", "1", "--lrs", "1e-3", "--log-every", "5", "--batch-size", "4", "--seq-len", "8",
               "--eval-size", "4", "--summary", str(summ), "--quiet"])
    assert rc == 0
    df = pd.read_csv(out)
    assert list(df.columns) == COLUMNS
    assert set(df["method"]) == {"lora", "rasa"}
    for method in ("lora", "rasa"):
        m = df[df.method == method]
        assert list(m["step"]) == [0, 5, 10, 15, 20]
        assert m["loss"].notna().all() and (m["loss"] >= 0).all()
        assert m["loss"].iloc[-1] < m["loss"].iloc[0]                  # it learns
    # both students start as the base model: identical loss at step 0
    assert df[df.method == "lora"]["loss"].iloc[0] == pytest.approx(df[df.method == "rasa"]["loss"].iloc[0])
    # equal A/B budget; RaSA adds one diagonal of r-k+L*k per layer and module type (7 types, L=4)
    n_lora = df[df.method == "lora"]["trainable_params"].iloc[0]
    n_rasa = df[df.method == "rasa"]["trainable_params"].iloc[0]
    assert set(df[df.method == "rasa"]["k"]) == {1} and set(df[df.method == "lora"]["k"]) == {0}
    assert n_rasa - n_lora == 7 * 4 * (4 - 1 + 4 * 1)
    s = json.loads(summ.read_text())
    assert set(s["final_loss"]) == {"lora", "rasa"} and len(s["recon"]) == 7
