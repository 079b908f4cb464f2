"""RaSA under DeepSpeed ZeRO-3: two CPU processes (gloo) give the plain run's loss curve; the saved adapter
loads/merges.

Slow (first run JIT-builds DeepSpeed's shm comm op, ~1-2 min; later runs ~15 s each).
"""

import json
import os
import subprocess
import sys

import pytest
import torch

HERE = os.path.dirname(__file__)
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SCRIPT = os.path.join(HERE, "zero3_rasa.py")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TORCH_EXTENSIONS_DIR", os.path.join(ROOT, ".venv", "torch_extensions"))
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(args, timeout=600):
    proc = subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


@pytest.mark.slow
@pytest.mark.parametrize("eager", [False, True], ids=["lazy-registration", "eager-registration"])
def test_zero3_matches_plain_run(tmp_path, eager):
    pytest.importorskip("deepspeed")
    plain, zero3 = str(tmp_path / "plain.json"), str(tmp_path / "zero3.json")
    _run([sys.executable, SCRIPT, "--plain", plain])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", str(29500 + (os.getpid() % 1000) + (1 if eager else 0))]
    _run(torchrun + [SCRIPT, "--zero3", zero3] + (["--eager"] if eager else []))
    p, z = json.load(open(plain)), json.load(open(zero3))
    assert z["partitioned"], "the shared pool was not partitioned: the test would not exercise gathering"
    assert z["registered_after"] == 3 * 7 * 5  # A~, B~, d, A_S, B_S for each of the 21 layers
    assert z["registered_at_injection"] == (105 if eager else 0)
    assert len(z["losses"]) == len(p["losses"]) == 6
    for a, b in zip(z["losses"], p["losses"]):
        assert abs(a - b) < 1e-5, (z["losses"], p["losses"])
    torch.testing.assert_close(torch.tensor(z["probe_logits"]), torch.tensor(p["probe_logits"]), rtol=1e-4,
                               atol=1e-5)
    # the adapter saved under ZeRO-3 loads into a fresh base model and merges to the same function
    sys.path.insert(0, HERE)
    from peft import PeftModel

    import rasa.adapters  # noqa: F401

    from adapter_models import tiny_llama
    from zero3_rasa import SEQ, probe  # noqa: F401

    loaded = PeftModel.from_pretrained(tiny_llama(num_layers=3, hidden=32, seed=0), z["adapter_dir"]).eval()
    merged = loaded.merge_and_unload()
    with torch.no_grad():
        logits = merged(input_ids=probe()).logits.flatten()[:200]
    torch.testing.assert_close(logits, torch.tensor(p["probe_logits"]), rtol=1e-4, atol=1e-5)


def test_eager_zero3_registration_survives_bf16_upcast():
    """With ZeRO-3 declared, the layers register their adapter weights at injection; PEFT then upcasts bf16 adapter
    weights to fp32 by creating new parameters, and the registration must follow (no stale entries)."""
    pytest.importorskip("deepspeed")
    sys.path.insert(0, HERE)
    from peft import get_peft_model
    from transformers.integrations import HfDeepSpeedConfig

    from rasa.adapters import RasaConfig
    from rasa.adapters.rasa import RasaLayer

    from adapter_models import LLAMA_TARGETS, tiny_llama

    cfg = {"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3}}
    keep = HfDeepSpeedConfig(cfg)  # noqa: F841
    try:
        model = get_peft_model(tiny_llama(dtype=torch.bfloat16), RasaConfig(r=4, k=1, target_modules=LLAMA_TARGETS))
        model.add_adapter("other", RasaConfig(r=2, k=1, target_modules=["q_proj"]))
        model.delete_adapter("other")
        for module in model.modules():
            if not isinstance(module, RasaLayer):
                continue
            A_S, B_S = module._pools.get("default", module.rasa_group["default"])
            want = {id(p) for p in (module.rasa_A["default"], module.rasa_B["default"], module.rasa_d["default"],
                                    A_S, B_S)}
            assert set(module._external_params) == want
            assert all(p.dtype == torch.float32 for p in module._external_params.values())
    finally:
        del keep
        import gc

        gc.collect()
