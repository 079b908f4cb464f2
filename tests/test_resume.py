"""Resume across world sizes, with racing ranks: a checkpoint written by 2 processes continues on 1
and on 4, from a directory that also holds an incomplete checkpoint.

Dropout is 0 here: each process draws its own dropout masks, so only a dropout-free run can equal
one of another world size; everything else (data order, loss over the global batch, LionW state)
must carry over, and the adapters must match an uninterrupted single-process run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from rasa import checkpointing, data
from test_train import FIXTURES, ROOT, _settings


def _run(settings: dict, procs: int, data_file, work, kill_after_steps=None):
    """rasa.train through rasa.launch on ``procs`` local processes; optionally SIGTERM the launcher
    (torchrun, which forwards it) once N steps are logged (by rank 0 alone under torchrun)."""
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


def _adapters(work, epoch):
    return load_file(work / "out" / f"weights/epoch-{epoch}/adapter_model.safetensors")


@pytest.mark.slow
def test_two_process_checkpoint_resumes_on_one_and_on_four_processes(tiny_model_dir, tmp_path):
    records = data.read_records(str(FIXTURES / "metamathqa.jsonl"))[:48]
    data_file = tmp_path / "train.jsonl"
    data.write_jsonl(records, data_file)
    settings = _settings(tiny_model_dir)
    settings.update(dropout=0.0, global_batch=4, micro_batch=1)  # 12 steps per epoch, 24 in all

    # Stopped inside epoch 2, where a resumed run must also reproduce the epoch's data order.
    code, log = _run(settings, 2, data_file, tmp_path / "two", kill_after_steps=14)
    assert code != 0 and "stopped at step" in log, log[-3000:]
    saved = checkpointing.latest_complete_checkpoint(tmp_path / "two" / "ckpt")
    assert saved is not None and (saved / checkpointing.WORLD_SIZE).read_text() == "2\n"
    step = int(saved.name.split("-")[1])
    assert 12 < step < 24
    # What a kill during a save leaves behind: a checkpoint without its marker.
    (tmp_path / "two" / "ckpt" / "checkpoint-23").mkdir()
    (tmp_path / "two" / "ckpt" / "checkpoint-23" / "optimizer.pt").write_bytes(b"half")

    code, log = _run(settings, 1, data_file, tmp_path / "plain")
    assert code == 0, log[-3000:]
    for procs in (1, 4):
        work = tmp_path / f"on{procs}"
        shutil.copytree(tmp_path / "two", work)
        code, log = _run(settings, procs, data_file, work)
        assert code == 0, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        manifest = json.loads((work / "out" / "manifest.json").read_text())
        assert manifest["hardware"]["world_size"] == procs
        assert len(manifest["hosts"]) == procs
        [resume] = manifest["resumes"]
        assert resume["step"] == step
        assert resume["saved_by_world_size"] == 2 and resume["world_size"] == procs
        assert manifest["optimizer_steps"] == 24
        for epoch in (1, 2):
            plain, resumed = _adapters(tmp_path / "plain", epoch), _adapters(work, epoch)
            assert plain.keys() == resumed.keys()
            for key in plain:
                torch.testing.assert_close(resumed[key], plain[key], rtol=0, atol=1e-5)
