"""Preemption-safe checkpoints and per-epoch exports for the HF Trainer.

- A checkpoint counts only once ``COMPLETE`` is written into it, last, after the Trainer has
  written model, optimizer, scheduler, RNG and trainer state: :func:`latest_complete_checkpoint`
  never returns a half-written one.
- At the end of every epoch the trained weights (adapter or full model) are copied out of the
  checkpoint into ``<out>/epoch-<e>/`` through a temporary folder and a rename, so an export
  folder either holds a whole artefact or does not exist.
- On SIGTERM (Slurm preemption with ``--signal``) every rank stops at the same optimizer-step
  boundary: the flag is all-reduced at each step end, then the Trainer saves and stops. The
  caller exits non-zero so the job is retried; the rerun continues from that checkpoint.
"""

from __future__ import annotations

import re
import shutil
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import TrainerCallback

MARKER = "COMPLETE"
ELAPSED = "elapsed_seconds"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_config.json", "model.safetensors",
                "model.safetensors.index.json", "config.json", "generation_config.json")


def latest_complete_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    found = []
    for path in Path(checkpoint_dir).glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if m and (path / MARKER).is_file():
            found.append((int(m[1]), path))
    return max(found)[1] if found else None


def remove_incomplete_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    removed = []
    for path in Path(checkpoint_dir).glob("checkpoint-*"):
        if path.is_dir() and not (path / MARKER).is_file():
            shutil.rmtree(path)
            removed.append(path)
    return removed


def export_weights(checkpoint: Path, target: Path) -> None:
    """Copy the trained weights of a checkpoint to ``target`` atomically (tmp folder + rename)."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in WEIGHT_FILES:
        if (checkpoint / name).is_file():
            shutil.copy2(checkpoint / name, tmp / name)
    for shard in checkpoint.glob("model-*.safetensors"):
        shutil.copy2(shard, tmp / shard.name)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


class CheckpointCallback(TrainerCallback):
    """Marks complete checkpoints, exports each epoch's weights, and stops cleanly on SIGTERM."""

    def __init__(self, out_dir: str | Path, steps_per_epoch: int, resumed_from: Path | None = None):
        self.out_dir = Path(out_dir)
        self.steps_per_epoch = steps_per_epoch
        self.elapsed_before = float((resumed_from / ELAPSED).read_text()) if resumed_from else 0.0
        self.started = time.monotonic()
        self.stop_requested = False
        self.preempted = False
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def elapsed_seconds(self) -> float:
        """Wall-clock training time over all attempts of this run (resumes included)."""
        return self.elapsed_before + time.monotonic() - self.started

    def _on_sigterm(self, signum, frame):
        self.stop_requested = True

    def _any_rank_stopping(self) -> bool:
        flag = torch.tensor([1.0 if self.stop_requested else 0.0])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def on_step_end(self, args, state, control, **kwargs):
        if self._any_rank_stopping() and state.global_step < state.max_steps:
            self.preempted = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return control
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.global_step % self.steps_per_epoch == 0:
            epoch = state.global_step // self.steps_per_epoch
            export_weights(checkpoint, self.out_dir / f"epoch-{epoch}")
        (checkpoint / ELAPSED).write_text(f"{self.elapsed_seconds()}\n")
        (checkpoint / MARKER).write_text(f"{state.global_step}\n")
        return control
