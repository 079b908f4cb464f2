"""Resume across world sizes, with racing ranks: a checkpoint written by 2 processes continues on 1
and on 4, from a directory that also holds an incomplete checkpoint.

Dropout is 0 here: each process draws its own dropout masks, so only a dropout-free run can equal
one of another world size; everything else (data order, loss over the global batch, LionW state)
must carry over. Resumed on 1 process, the adapters match the uninterrupted single-process run to
1e-5. On 4, the all-reduce adds four gradients in another order than one process accumulates them,
and LionW's sign update turns such rounding differences into whole ±lr steps on entries whose
momentum is near zero: there the bound is a few learning rates.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from test_train import _math_data, _settings, _train

from rasa import checkpointing


def _adapters(work, epoch):
    return load_file(work / "out" / f"weights/epoch-{epoch}/adapter_model.safetensors")


@pytest.mark.slow
def test_two_process_checkpoint_resumes_on_one_and_on_four_processes(tiny_model_dir, tmp_path):
    data_file = _math_data(tmp_path, 48)
    settings = _settings(tiny_model_dir)
    settings.update(dropout=0.0, global_batch=4, micro_batch=1)  # 12 steps per epoch, 24 in all

    # Stopped inside epoch 2, where a resumed run must also reproduce the epoch's data order.
    code, log = _train(settings, data_file, tmp_path / "two", procs=2, kill_after_steps=14)
    assert code != 0 and "stopped at step" in log, log[-3000:]
    saved = checkpointing.latest_complete_checkpoint(tmp_path / "two" / "ckpt")
    assert saved is not None and (saved / checkpointing.WORLD_SIZE).read_text() == "2\n"
    step = int(saved.name.split("-")[1])
    assert 12 < step < 24
    # What a kill during a save leaves behind: a checkpoint without its marker.
    (tmp_path / "two" / "ckpt" / "checkpoint-23").mkdir()
    (tmp_path / "two" / "ckpt" / "checkpoint-23" / "optimizer.pt").write_bytes(b"half")

    code, log = _train(settings, data_file, tmp_path / "plain")
    assert code == 0, log[-3000:]
    for procs in (1, 4):
        work = tmp_path / f"on{procs}"
        shutil.copytree(tmp_path / "two", work)
        code, log = _train(settings, data_file, work, procs)
        assert code == 0, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        manifest = json.loads((work / "out" / "manifest.json").read_text())
        assert manifest["hardware"]["world_size"] == procs
        assert len(manifest["hosts"]) == procs
        [resume] = manifest["resumes"]
        assert resume["step"] == step
        assert resume["saved_by_world_size"] == 2 and resume["world_size"] == procs
        assert manifest["optimizer_steps"] == 24
        atol = 1e-5 if procs == 1 else 4 * settings["lr"]
        for epoch in (1, 2):
            plain, resumed = _adapters(tmp_path / "plain", epoch), _adapters(work, epoch)
            assert plain.keys() == resumed.keys()
            for key in plain:
                torch.testing.assert_close(resumed[key], plain[key], rtol=0, atol=atol)
