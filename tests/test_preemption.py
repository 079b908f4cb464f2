"""When training saves and stops: SIGTERM, the periodic save, the Slurm deadline."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import datetime

from rasa import preemption


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
