"""rasa.recon_analysis: the Figures 2–3 CSV from two tiny checkpoints on disk."""

import pandas as pd
import pytest
import torch

from rasa.recon_analysis import COLUMNS, main


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared machine
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("ck")
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=128, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(root / "base")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and ".layers." in name:
                decay = torch.logspace(0, -1.5, p.shape[1])
                p.add_(0.01 * torch.randn(p.shape, generator=g) * decay)
    # sharded on purpose: exercises model.safetensors.index.json
    model.save_pretrained(root / "ft", max_shard_size="100KB")
    assert (root / "ft" / "model.safetensors.index.json").is_file()
    return root / "base", root / "ft"


def run(checkpoints, out, extra=()):
    base, ft = checkpoints
    args = ["--base", str(base), "--finetuned", str(ft), "--model-name", "tiny", "--out", str(out),
            "--modules", "q_proj,k_proj,down_proj", "--fig2-r", "8", "--fig2-k", "1", "--fig2-iters", "3",
            "--fig3-ranks", "4,40", "--fig3-ks", "0,1,8", "--fig3-iters", "3", "--quiet", *extra]
    assert main(args) == 0
    return pd.read_csv(out)


def test_cli_writes_figure2_and_figure3_rows(checkpoints, tmp_path):
    df = run(checkpoints, tmp_path / "recon.csv")
    assert list(df.columns) == COLUMNS
    assert set(df["analysis"]) == {"figure2", "figure3"}
    assert set(df["module"]) == {"q_proj", "k_proj", "down_proj"}
    f2 = df[df.analysis == "figure2"]
    for module in ("q_proj", "k_proj", "down_proj"):
        m = f2[f2.module == module]
        lora = m[m.method == "lora"]
        assert len(lora) == 1 and lora.iloc[0]["iteration"] == 0
        for init in ("paper", "theorem"):
            h = m[(m.method == "rasa") & (m.init == init)].sort_values("iteration")
            assert list(h["iteration"]) == [0, 1, 2, 3]
            assert (h["error"].diff().dropna() <= 0).all()
        th = m[(m.method == "rasa") & (m.init == "theorem")]
        assert (th["error"] <= lora.iloc[0]["error"] * (1 + 1e-9)).all()
    f3 = df[df.analysis == "figure3"]
    # k = 8 > r = 4 is skipped; k = 0 equals LoRA
    assert f3[(f3.r == 4) & (f3.k == 8)].empty
    for module in ("q_proj", "k_proj", "down_proj"):
        m = f3[(f3.module == module) & (f3.r == 4)]
        lora = m[m.method == "lora"]["error"].item()
        assert m[(m.method == "rasa") & (m.k == 0)]["error"].item() == pytest.approx(lora, rel=1e-9)
        assert m[(m.method == "rasa") & (m.k == 1)]["error"].item() <= lora * (1 + 1e-9)
    # r = 40 ≥ min(out, in) of k_proj (32 × 64): exact reconstruction, rows kept with error 0
    kp = f3[(f3.module == "k_proj") & (f3.r == 40)]
    assert len(kp) == 4 and (kp["error"] == 0).all()


def test_cli_is_deterministic(checkpoints, tmp_path):
    run(checkpoints, tmp_path / "a.csv", ["--modules", "v_proj"])
    run(checkpoints, tmp_path / "b.csv", ["--modules", "v_proj"])
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
