"""The training recipe: data handling, LionW, and preemption-safe resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rasa import checkpointing, data, prompts
from rasa.io import write_jsonl_atomic
from rasa.optim import LionTrainer  # noqa: F401  (import check)
from rasa.train import accumulation_steps

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "rasa" / "fixtures"


def test_sampling_is_seeded_and_nested():
    records = [{"i": i} for i in range(100)]
    quarter, half, full = (data.sample(records, f, seed=42) for f in (0.25, 0.5, 1.0))
    assert len(quarter) == 25 and len(half) == 50 and len(full) == 100
    assert quarter == half[:25] and half == full[:50]
    assert data.sample(records, 0.5, seed=42) == half
    assert data.sample(records, 0.5, seed=1) != half
    with pytest.raises(ValueError, match="fraction"):
        data.sample(records, 0.0, seed=42)


def test_missing_field_fails_naming_it():
    with pytest.raises(ValueError, match=r"no field\(s\) \['query'\]"):
        data.check_fields([{"question": "q", "response": "a"}], ["query", "response"], "x.jsonl")


def test_instruction_masking_matches_the_authors(tiny_model_dir):
    from rasa.modeling import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    question, answer = "What is 2 + 3?", "2 + 3 = 5. The answer is: 5"
    enc = data.encode(question, answer, tok, 512, mask="instruction")
    text = tok.bos_token + prompts.training_text(question, answer) + " " + tok.eos_token
    lo, hi = prompts.instruction_span(text)
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for label, token, (start, end) in zip(enc["labels"], enc["input_ids"], offsets):
        overlaps = start < hi and end > lo
        assert (label == data.IGNORE) == overlaps
        assert overlaps or label == token
    assert text[lo:hi] == question + "\n\n"
    assert enc["labels"][-1] == tok.eos_token_id  # the response and EOS are trained on
    prompt_masked = data.encode(question, answer, tok, 512, mask="prompt")
    masked = sum(label == data.IGNORE for label in prompt_masked["labels"])
    assert masked > sum(label == data.IGNORE for label in enc["labels"])


def test_global_batch_that_cannot_split_is_refused():
    assert accumulation_steps(192, 3, 8) == 8
    with pytest.raises(ValueError, match="training.global_batch=192 is not divisible"):
        accumulation_steps(192, 5, 8)


def test_lion_step_is_the_papers_decoupled_lionw():
    from lion_pytorch import Lion

    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5))
    m = torch.randn(5)
    g = torch.randn(5)
    lr, wd, b1, b2 = 1e-2, 0.1, 0.9, 0.95
    opt = Lion([p], lr=lr, betas=(b1, b2), weight_decay=wd, decoupled_weight_decay=True)
    opt.state[p]["exp_avg"] = m.clone()
    before = p.detach().clone()
    p.grad = g.clone()
    opt.step()
    expected = before * (1 - (lr / lr) * wd) - lr * torch.sign(b1 * m + (1 - b1) * g)
    assert torch.allclose(p.detach(), expected)
    assert torch.allclose(opt.state[p]["exp_avg"], b2 * m + (1 - b2) * g)


def test_checkpoint_without_marker_is_never_loaded(tmp_path):
    for step, complete in ((4, True), (8, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / checkpointing.MARKER).write_text("4\n")
    assert checkpointing.latest_complete_checkpoint(tmp_path).name == "checkpoint-4"
    checkpointing.remove_incomplete_checkpoints(tmp_path)
    assert not (tmp_path / "checkpoint-8").exists()


def _settings(model_dir, run_id="tiny__math__rasa-r4-k1__f100__e2"):
    return {
        "run_id": run_id, "model": "tiny", "paper_model": "Llama-3.1-8B", "model_path": str(model_dir),
        "revision": None, "method": "rasa", "r": 4, "k": 1, "alpha": 8, "lr": 5e-3, "epochs": 2,
        "fraction": 1.0, "target_modules": ["q_proj", "v_proj", "up_proj"], "seed": 42,
        "question": "query", "answer": "response", "micro_batch": 1, "global_batch": 2,
        "max_length": 128, "dropout": 0.05, "warmup_ratio": 0.1, "lion_betas": [0.9, 0.95],
        "weight_decay": 0.0, "mask": "instruction", "loss_averaging": "micro_batch", "group_by_length": True,
        "gradient_checkpointing": False, "dtype": "float32", "deepspeed": None,
        "nodes": 1, "procs_per_node": 1, "checkpoint_minutes": 30, "deadline_margin_minutes": 15,
    }


def _train(settings: dict, data_file, work, procs=1, kill_after_steps=None):
    """rasa.train through rasa.launch on ``procs`` local processes; optionally SIGTERM the launcher
    (torchrun forwards it) once N steps are logged (by rank 0 alone under torchrun)."""
    settings = dict(settings, procs_per_node=procs)
    cmd = [sys.executable, "-m", "rasa.launch", "--procs-per-node", str(procs), "rasa.train",
           "--settings", json.dumps(settings), "--data", str(data_file),
           "--checkpoints", str(work / "ckpt"), "--out", str(work / "out")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(env, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1"))
    steps, output = 0, []
    for line in proc.stdout:
        output.append(line)
        if line.startswith("{'loss'"):
            steps += 1
            if kill_after_steps and steps == kill_after_steps:
                proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=600), "".join(output)


def _math_data(tmp_path, n: int):
    """The first ``n`` MetaMathQA fixture records as a training file."""
    data_file = tmp_path / "train.jsonl"
    write_jsonl_atomic(data_file, data.read_records(str(FIXTURES / "metamathqa.jsonl"))[:n])
    return data_file


@pytest.mark.slow
def test_sigterm_mid_epoch_then_rerun_equals_uninterrupted(tiny_model_dir, tmp_path):
    data_file = _math_data(tmp_path, 40)

    settings = _settings(tiny_model_dir)
    code, log = _train(settings, data_file, tmp_path / "plain")
    assert code == 0, log
    code, log = _train(settings, data_file, tmp_path / "preempted", kill_after_steps=7)
    assert code == 143, log  # stopped at a step boundary inside epoch 1 (20 steps per epoch)
    assert "stopped at step" in log
    assert checkpointing.latest_complete_checkpoint(tmp_path / "preempted" / "ckpt") is not None
    code, log = _train(settings, data_file, tmp_path / "preempted")
    assert code == 0, log

    from safetensors.torch import load_file

    for epoch in (1, 2):
        name = f"weights/epoch-{epoch}/adapter_model.safetensors"
        plain = load_file(tmp_path / "plain" / "out" / name)
        resumed = load_file(tmp_path / "preempted" / "out" / name)
        assert plain.keys() == resumed.keys()
        for key in plain:
            assert torch.equal(plain[key], resumed[key]), key  # bitwise on CPU
    assert (tmp_path / "plain/out/losses.csv").read_text() == (tmp_path / "preempted/out/losses.csv").read_text()


def test_launcher_single_process_node_and_multi_node(monkeypatch):
    from rasa import launch

    assert launch.command(1, 1, "rasa.train", ["--x"], env={})[1:] == ["-m", "rasa.train", "--x"]
    node = launch.command(1, 8, "rasa.train", ["--x"], env={})
    assert "--standalone" in node and "--nproc-per-node=8" in node
    assert f"--shutdown-timeout={launch.SHUTDOWN_SECONDS}" in node
    with pytest.raises(SystemExit, match="need a Slurm job"):
        launch.command(2, 1, "rasa.train", [], env={})

    outputs = {("show", "job", "-o", "42"): "JobId=42 JobName=x NodeList=gpu[017-024] NumNodes=8 "
                                            "NumCPUs=64 CPUs/Task=4 ReqB:S:C:T=0:0:*:*",
               ("show", "hostnames", "gpu[017-024]"): "gpu017\ngpu018\n",
               ("show", "node", "-o", "gpu017"): "NodeName=gpu017 Arch=x86_64 NodeAddr=10.1.0.17"}
    monkeypatch.setattr(launch, "scontrol", lambda *args: outputs[args])
    multi = launch.command(8, 4, "rasa.train", ["--x"], env={"SLURM_JOB_ID": "42"})
    assert multi[:7] == ["srun", "--nodes=8", "--ntasks=32", "--ntasks-per-node=4",
                         "--cpus-per-task=4", "--overlap", "--kill-on-bad-exit=1"]
    assert multi[7] == f"--export=ALL,MASTER_ADDR=10.1.0.17,MASTER_PORT={20000 + 42}"
    assert multi[-5:] == ["-m", "rasa.launch", "--task", "rasa.train", "--x"]
    with pytest.raises(SystemExit, match="wants 2 node"):
        launch.command(2, 4, "rasa.train", [], env={"SLURM_JOB_ID": "42"})
    task = launch.task_environment({"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "32",
                                    "SLURM_NTASKS_PER_NODE": "4", "SLURM_NODEID": "1"})
    assert task == {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "32", "LOCAL_WORLD_SIZE": "4",
                    "GROUP_RANK": "1"}


def test_world_size_must_match_the_config():
    from rasa.run_settings import RunSettings
    from rasa.train import check_world_size

    s = RunSettings.from_dict(dict(_settings("/nonexistent"), nodes=2, procs_per_node=4))
    check_world_size(s, 8)
    with pytest.raises(ValueError, match=r"nodes × procs_per_node = 2 × 4 = 8"):
        check_world_size(s, 4)


@pytest.mark.slow
def test_deepspeed_zero2_offload_on_two_processes_steps_with_lion(tiny_model_dir, tmp_path):
    """ZeRO-2 with optimizer offload (configs/deepspeed/zero2.json) steps with Lion: DeepSpeed's
    CPU Lion, which rasa.optim hands to the engine where the optimizer is offloaded."""
    data_file = _math_data(tmp_path, 16)
    settings = _settings(tiny_model_dir)
    settings.update(deepspeed="configs/deepspeed/zero2.json", global_batch=4, micro_batch=2, epochs=1)
    settings.update(procs_per_node=2)
    cmd = [sys.executable, "-m", "rasa.launch", "--procs-per-node", "2", "rasa.train",
           "--settings", json.dumps(settings), "--data", str(data_file),
           "--checkpoints", str(tmp_path / "ckpt"), "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, TORCH_EXTENSIONS_DIR=str(tmp_path / "torch_ext")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["hardware"]["world_size"] == 2
    assert any("DeepSpeedZeroOptimizer" in name for name in manifest["optimizer"]), manifest["optimizer"]
    assert manifest["optimizer"][-1] == "deepspeed.ops.lion.cpu_lion.DeepSpeedCPULion"


def test_gated_model_without_token_fails_before_any_download(monkeypatch):
    from rasa import hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(SystemExit, match="set HF_TOKEN"):
        hub.fetch_model("meta-llama/Llama-3.1-8B", "main", "/nonexistent/never-written", gated=True)
