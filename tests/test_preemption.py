"""When training saves and stops (SIGTERM, the periodic save, the Slurm deadline), and what a
resume at another world size needs from a checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import datetime

import pytest

from rasa import checkpointing, preemption


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_periodic_save_deadline_and_sigterm():
    clock = Clock()
    policy = preemption.StopPolicy(checkpoint_minutes=30, deadline_margin_minutes=15,
                                   deadline=clock.now + 4 * 3600, clock=clock)
    assert policy.decide() == (False, False)
    clock.now += 30 * 60
    assert policy.decide() == (False, True)  # 30 minutes since the last save
    policy.saved()
    assert policy.decide() == (False, False)
    clock.now = 1000.0 + 4 * 3600 - 15 * 60
    assert policy.decide() == (True, True)  # 15 minutes before the job's end: save and stop


def test_short_job_keeps_three_quarters_of_its_time_and_sigterm_stops():
    clock = Clock()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        policy = preemption.StopPolicy(30, 15, deadline=clock.now + 600, clock=clock)
        clock.now += 449
        assert policy.decide() == (False, False)  # the margin is 150 s, not 15 minutes
        clock.now += 1
        assert policy.decide() == (True, True)
        quiet = preemption.StopPolicy(30, 15, deadline=None, clock=clock)
        os.kill(os.getpid(), signal.SIGTERM)
        assert quiet.decide() == (True, True)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_deadline_is_read_from_squeue(monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="2026-12-04T19:30:00\n", stderr="")

    monkeypatch.setattr(preemption.subprocess, "run", fake_run)
    assert preemption.slurm_deadline({"SLURM_JOB_ID": "7"}) == datetime(2026, 12, 4, 19, 30).timestamp()
    assert calls == [["squeue", "-h", "-j", "7", "-o", "%e"]]
    assert preemption.slurm_deadline({}) is None
    monkeypatch.setattr(preemption.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 0, stdout="N/A\n", stderr=""))
    assert preemption.slurm_deadline({"SLURM_JOB_ID": "7"}) is None


def test_deepspeed_checkpoint_of_another_world_size_is_refused_before_loading(tmp_path):

    (tmp_path / checkpointing.WORLD_SIZE).write_text("8\n")
    checkpointing.check_deepspeed_world_size(tmp_path, 8)
    with pytest.raises(SystemExit, match="saved by 8 DeepSpeed processes and cannot resume on 4"):
        checkpointing.check_deepspeed_world_size(tmp_path, 4)


def test_rng_states_are_filled_in_for_the_new_ranks(tmp_path):
    for rank in (0, 1):
        (tmp_path / f"rng_state_{rank}.pth").write_bytes(f"rank{rank}".encode())
    checkpointing.adapt_rng_states(tmp_path, 4)
    assert [(tmp_path / f"rng_state_{r}.pth").read_bytes() for r in range(4)] == [
        b"rank0", b"rank1", b"rank0", b"rank0"]
    checkpointing.adapt_rng_states(tmp_path, 1)
    assert (tmp_path / "rng_state.pth").read_bytes() == b"rank0"
