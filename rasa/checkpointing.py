"""Preemption-safe checkpoints and per-epoch exports for the HF Trainer.

- A checkpoint counts only once ``COMPLETE`` is written into it, last, after the Trainer has
  written model, optimizer, scheduler, RNG and trainer state: :func:`latest_complete_checkpoint`
  never returns a half-written one.
- At the end of every epoch the trained weights (adapter or full model) are copied out of the
  checkpoint into ``<out>/epoch-<e>/`` through a temporary folder and a rename, so an export
  folder either holds a whole artefact or does not exist.
- Between epochs, checkpoints are also saved every ``checkpoint_minutes``, and on SIGTERM or near
  the Slurm deadline every rank saves and stops at the same optimizer step (``rasa.preemption``).
  The caller then exits non-zero so the job is retried; the rerun continues from that checkpoint.
- Only rank 0 removes incomplete checkpoints, while the others wait (:func:`clean_for_resume`).
- A checkpoint resumes at any world size: adapter, optimizer and scheduler state are the same on
  every rank without DeepSpeed, and the Trainer's per-rank RNG files are filled in for the new
  ranks from rank 0's (:func:`adapt_rng_states`).
- A checkpoint records the world size that wrote it; each resume is appended to ``resumes.jsonl``
  beside the checkpoints (step, world sizes, hosts, Slurm job) and ends up in the run manifest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import torch.distributed as dist
from transformers import TrainerCallback

from rasa.io import atomic_folder
from rasa.preemption import StopPolicy, agree

MARKER = "COMPLETE"
ELAPSED = "elapsed_seconds"
WORLD_SIZE = "world_size"
RESUMES = "resumes.jsonl"
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


def clean_for_resume(checkpoint_dir: str | Path, is_rank_zero: bool) -> Path | None:
    """Rank 0 removes incomplete checkpoints while every other rank waits at a barrier; then all
    return the newest complete checkpoint (or None)."""
    if is_rank_zero:
        remove_incomplete_checkpoints(checkpoint_dir)
        latest = latest_complete_checkpoint(checkpoint_dir)
        if latest:
            adapt_rng_states(latest, dist.get_world_size() if dist.is_initialized() else 1)
    barrier()
    return latest_complete_checkpoint(checkpoint_dir)


def adapt_rng_states(checkpoint: Path, world_size: int) -> None:
    """Give every rank of a resume at another world size an RNG state file, copied from rank 0's.

    The Trainer saves ``rng_state.pth`` in a single process and ``rng_state_<rank>.pth`` otherwise,
    and on resume silently keeps its current RNG when its own file is missing: the data order
    (a length-grouped sampler draws from the global generator) would then differ from the
    uninterrupted run's. Rank 0's state is the one every rank shares up to dropout draws.
    """
    source = next((checkpoint / n for n in ("rng_state_0.pth", "rng_state.pth")
                   if (checkpoint / n).is_file()), None)
    if source is None:
        return
    names = ["rng_state.pth"] if world_size == 1 else [f"rng_state_{i}.pth" for i in range(world_size)]
    for name in names:
        if not (checkpoint / name).is_file():
            shutil.copy2(source, checkpoint / name)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def leave_process_group() -> None:
    """Every rank leaves the process group together before it exits. A rank whose interpreter
    exits with the group still up can abort in a communication thread's destructor
    ("terminate called without an active exception", SIGABRT), failing a finished run."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_deepspeed_world_size(checkpoint: Path, world_size: int) -> None:
    """DeepSpeed's ZeRO shards resume only at the world size that wrote them: say so before loading."""
    saved = checkpoint / WORLD_SIZE
    if saved.is_file() and int(saved.read_text()) != world_size:
        raise SystemExit(
            f"{checkpoint} was saved by {int(saved.read_text())} DeepSpeed processes and cannot resume "
            f"on {world_size}: run with the model's former nodes × procs_per_node, or convert it with "
            "DeepSpeed's ds_to_universal and load it as a universal checkpoint.")


def record_resume(checkpoint_dir: str | Path, checkpoint: Path, world_size: int,
                  hosts: list[str]) -> None:
    """Append one resume (rank 0 only) to ``resumes.jsonl``."""
    saved = checkpoint / WORLD_SIZE
    entry = {"checkpoint": checkpoint.name, "step": int(checkpoint.name.split("-")[1]),
             "saved_by_world_size": int(saved.read_text()) if saved.is_file() else None,
             "world_size": world_size, "hosts": hosts,
             "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
             "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with open(Path(checkpoint_dir) / RESUMES, "a") as f:
        f.write(json.dumps(entry) + "\n")


def resume_history(checkpoint_dir: str | Path) -> list[dict]:
    path = Path(checkpoint_dir) / RESUMES
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def export_weights(checkpoint: Path, target: Path) -> None:
    """Copy the trained weights of a checkpoint to ``target`` atomically (:func:`rasa.io.atomic_folder`)."""
    with atomic_folder(target) as tmp:
        for name in WEIGHT_FILES:
            if (checkpoint / name).is_file():
                shutil.copy2(checkpoint / name, tmp / name)
        for shard in checkpoint.glob("model-*.safetensors"):
            shutil.copy2(shard, tmp / shard.name)


class CheckpointCallback(TrainerCallback):
    """Marks complete checkpoints, exports each epoch's weights, and saves/stops as ``policy`` says."""

    def __init__(self, out_dir: str | Path, steps_per_epoch: int, policy: StopPolicy,
                 resumed_from: Path | None = None):
        self.out_dir = Path(out_dir)
        self.steps_per_epoch = steps_per_epoch
        self.policy = policy
        self.elapsed_before = float((resumed_from / ELAPSED).read_text()) if resumed_from else 0.0
        self.started = time.monotonic()
        self.preempted = False

    def elapsed_seconds(self) -> float:
        """Wall-clock training time over all attempts of this run (resumes included)."""
        return self.elapsed_before + time.monotonic() - self.started

    def on_step_end(self, args, state, control, **kwargs):
        stop, save = agree(*self.policy.decide())
        if state.global_step < state.max_steps:
            control.should_save = control.should_save or save
            if stop:
                self.preempted = True
                control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        self.policy.saved()
        barrier()  # every rank has written its part (RNG state, ZeRO shards) before the marker
        if state.is_world_process_zero:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.global_step % self.steps_per_epoch == 0:
                epoch = state.global_step // self.steps_per_epoch
                export_weights(checkpoint, self.out_dir / f"epoch-{epoch}")
            (checkpoint / ELAPSED).write_text(f"{self.elapsed_seconds()}\n")
            (checkpoint / WORLD_SIZE).write_text(f"{args.world_size}\n")
            (checkpoint / MARKER).write_text(f"{state.global_step}\n")
        barrier()  # no rank exits (and gets the step killed) while rank 0 still writes
        return control
