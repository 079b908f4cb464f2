"""When to save and when to stop: SIGTERM, a periodic save, and the Slurm job's own deadline.

Every rank decides locally and the decisions are all-reduced (MAX) at each optimizer-step end, so
all ranks save at the same step and stop at the same step:

- **SIGTERM** (Slurm preemption, ``--signal=TERM@<s>`` without ``B:``, ``scancel --signal=TERM``):
  save and stop; the caller exits non-zero, so the job is retried and resumes.
- **every ``checkpoint_minutes``** of training (default 30): save and go on, so a crash or a kill
  without warning loses at most that much.
- **``deadline_margin_minutes`` before the job's end time** (``squeue -h -j $SLURM_JOB_ID -o %e``,
  read once at start by rank 0): save and stop, like SIGTERM, without relying on the signal. The
  margin is at most a quarter of the time the job had left at start, so a short job still trains.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime

import torch
import torch.distributed as dist


def slurm_deadline(env=os.environ) -> float | None:
    """The Slurm job's end time (seconds since the epoch), or None outside Slurm or without a limit."""
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%e"], capture_output=True,
                             text=True, timeout=60, check=True).stdout.strip()
        return datetime.fromisoformat(out).timestamp()  # squeue prints the node's local time
    except (OSError, subprocess.SubprocessError, ValueError):
        return None  # no squeue, or "N/A"/"Unknown": no deadline to act on


def agree(*flags: bool) -> list[bool]:
    """The element-wise OR of ``flags`` over all ranks (one all-reduce)."""
    t = torch.tensor([1.0 if f else 0.0 for f in flags])
    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(x) for x in t.tolist()]


class StopPolicy:
    """Tracks SIGTERM, the time since the last save and the deadline; see the module docstring."""

    def __init__(self, checkpoint_minutes: float, deadline_margin_minutes: float,
                 deadline: float | None, clock=time.time):
        self.save_every = checkpoint_minutes * 60
        self.clock = clock
        self.last_save = clock()
        self.stop_at = None
        if deadline is not None:
            margin = min(deadline_margin_minutes * 60, (deadline - self.last_save) / 4)
            self.stop_at = deadline - margin
        self.sigterm = False
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame):
        self.sigterm = True

    def decide(self) -> tuple[bool, bool]:
        """(stop, save) for this rank now; stopping always saves."""
        now = self.clock()
        stop = self.sigterm or (self.stop_at is not None and now >= self.stop_at)
        return stop, stop or now - self.last_save >= self.save_every

    def saved(self) -> None:
        self.last_save = self.clock()
